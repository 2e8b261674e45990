/**
 * Aggregates a V8 `.cpuprofile` (from `node --cpu-prof`) into self time per function+file and
 * per area (Keygate's own code, each package, Node internals, GC).
 *
 *   node --import tsx bench/cpuprofile.ts <file.cpuprofile> [--top N] [--last-seconds S]
 *
 * Under tsx, each TypeScript file runs as one line of esbuild output, so the profile's positions
 * in src/ are columns of that line. `sourceLines()` redoes the same transform (tsx's esbuild
 * options) and reads its source map to name the original line.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ROOT } from "./lib.js";

type CallFrame = { functionName: string; url: string; lineNumber: number; columnNumber: number };
type ProfileNode = { id: number; callFrame: CallFrame; children?: number[] };
export type CpuProfile = {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
};

export type Row = { name: string; file: string; area: string; ms: number; pct: number };
export type ProfileSummary = {
  /** Profiled time inside the window, idle included. */
  windowMs: number;
  /** Busy (non-idle) time the percentages are of. */
  busyMs: number;
  areas: { area: string; ms: number; pct: number }[];
  top: Row[];
  /** The functions of Keygate's own source (src/), by self time. */
  own: Row[];
  /** The functions of Keygate's own source, by total time (self and everything they call). */
  ownTotal: Row[];
  /** Every function by self time (for comparing two profiles; not meant for printing). */
  functions: Row[];
};

const SPECIAL = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"]);

/** Maps a position in the running (transformed) code back to the 1-based source line. */
export type LineResolver = (file: string, line0: number, column0: number) => number;

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Decodes a source map's `mappings` into, per generated line, [column, source line] pairs. */
function decodeMappings(mappings: string): [number, number][][] {
  const lines: [number, number][][] = [];
  let srcLine = 0;
  for (const text of mappings.split(";")) {
    const segments: [number, number][] = [];
    let col = 0;
    for (const seg of text.split(",")) {
      if (!seg) continue;
      const values: number[] = [];
      let value = 0;
      let shift = 0;
      for (const ch of seg) {
        const digit = B64.indexOf(ch);
        value += (digit & 31) << shift;
        if (digit & 32) {
          shift += 5;
        } else {
          values.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      col += values[0] ?? 0;
      if (values.length >= 4) {
        srcLine += values[2] ?? 0;
        segments.push([col, srcLine]);
      }
    }
    lines.push(segments);
  }
  return lines;
}

/**
 * A resolver for files under src/ run through tsx, or `null` when esbuild (tsx's own
 * dependency) cannot be loaded; positions then stay as the profile has them.
 */
export async function sourceLines(): Promise<LineResolver | null> {
  let transformSync: typeof import("esbuild").transformSync;
  try {
    ({ transformSync } = await import("esbuild"));
  } catch {
    return null;
  }
  const maps = new Map<string, [number, number][][] | null>();
  return (file, line0, column0) => {
    if (!file.startsWith("src/") || !file.endsWith(".ts")) return line0 + 1;
    let map = maps.get(file);
    if (map === undefined) {
      map = null;
      const path = join(ROOT, file);
      if (existsSync(path)) {
        try {
          const out = transformSync(readFileSync(path, "utf8"), {
            target: `node${process.versions.node}`,
            loader: "ts",
            format: "esm",
            sourcemap: true,
            minifyWhitespace: true,
            keepNames: true,
            sourcefile: path,
          });
          map = decodeMappings((JSON.parse(out.map) as { mappings: string }).mappings);
        } catch {
          map = null;
        }
      }
      maps.set(file, map);
    }
    const segments = map?.[line0];
    if (!segments || segments.length === 0) return line0 + 1;
    let best = segments[0] as [number, number];
    for (const seg of segments) {
      if (seg[0] > column0) break;
      best = seg;
    }
    return best[1] + 1;
  };
}

function shortFile(url: string): string {
  if (!url) return "";
  if (url.startsWith("file://")) {
    const path = relative(ROOT, fileURLToPath(url));
    return path.startsWith("..") ? fileURLToPath(url) : path;
  }
  return url;
}

function areaOf(name: string, file: string): string {
  if (SPECIAL.has(name)) return name;
  if (file.startsWith("src/")) return "keygate (src/)";
  const nm = file.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const parts = file.slice(nm + "node_modules/".length).split("/");
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? "node_modules");
  }
  if (file.startsWith("node:")) return "node internals";
  if (file === "") return "native (V8 builtins, C++)";
  return "other";
}

/**
 * Self time by function and by area. `window` (µs, in the profile's own clock) keeps only
 * samples taken inside it, e.g. the load phase without start-up.
 */
export function summarise(
  profile: CpuProfile,
  opts: { top?: number; window?: { from: number; to: number }; lines?: LineResolver | null } = {},
): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const { samples, timeDeltas } = profile;
  let t = profile.startTime;
  let windowUs = 0;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i] ?? 0;
    // A sample stands for the time until the next one.
    const dt = timeDeltas[i + 1] ?? 0;
    if (opts.window && (t < opts.window.from || t > opts.window.to)) continue;
    const id = samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + dt);
    windowUs += dt;
  }

  type Fn = { key: string; name: string; where: string; area: string };
  const described = new Map<number, Fn>();
  const describe = (id: number): Fn | null => {
    const known = described.get(id);
    if (known) return known;
    const frame = byId.get(id)?.callFrame;
    if (!frame) return null;
    const name = frame.functionName || "(anonymous)";
    const file = shortFile(frame.url);
    const line = opts.lines
      ? opts.lines(file, frame.lineNumber, frame.columnNumber)
      : frame.lineNumber + 1;
    const where = file ? `${file}:${line}` : "";
    const fn = { key: `${name}\u0000${where}`, name, where, area: areaOf(name, file) };
    described.set(id, fn);
    return fn;
  };
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const fns = new Map<string, Row>();
  const totals = new Map<string, Row>();
  const areas = new Map<string, number>();
  let idleUs = 0;
  for (const [id, us] of self) {
    const fn = describe(id);
    if (!fn) continue;
    if (fn.name === "(idle)") {
      idleUs += us;
      continue;
    }
    areas.set(fn.area, (areas.get(fn.area) ?? 0) + us);
    const row = fns.get(fn.key) ?? { name: fn.name, file: fn.where, area: fn.area, ms: 0, pct: 0 };
    row.ms += us / 1000;
    fns.set(fn.key, row);
    // Total time: every src/ function on this stack, once each (recursion counts once).
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = describe(at);
      if (!f || f.area !== "keygate (src/)" || seen.has(f.key)) continue;
      seen.add(f.key);
      const total = totals.get(f.key) ?? {
        name: f.name,
        file: f.where,
        area: f.area,
        ms: 0,
        pct: 0,
      };
      total.ms += us / 1000;
      totals.set(f.key, total);
    }
  }
  const busyUs = windowUs - idleUs;
  const pct = (us: number) => (busyUs > 0 ? (100 * us) / busyUs : 0);
  const rows = [...fns.values()]
    .map((r) => ({ ...r, pct: pct(r.ms * 1000) }))
    .sort((a, b) => b.ms - a.ms);
  return {
    windowMs: windowUs / 1000,
    busyMs: busyUs / 1000,
    areas: [...areas.entries()]
      .map(([area, us]) => ({ area, ms: us / 1000, pct: pct(us) }))
      .sort((a, b) => b.ms - a.ms),
    top: rows.slice(0, opts.top ?? 25),
    functions: rows,
    own: rows.filter((r) => r.area === "keygate (src/)").slice(0, opts.top ?? 25),
    ownTotal: [...totals.values()]
      .map((r) => ({ ...r, pct: pct(r.ms * 1000) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, opts.top ?? 25),
  };
}

export function summaryMarkdown(s: ProfileSummary, top = 20): string {
  const lines = [
    `Profiled window ${s.windowMs.toFixed(0)} ms, busy (not idle) ${s.busyMs.toFixed(0)} ms; shares are of busy time.`,
    "",
    "| area | self ms | share |",
    "| --- | ---: | ---: |",
    ...s.areas.slice(0, 12).map((a) => `| ${a.area} | ${a.ms.toFixed(0)} | ${a.pct.toFixed(1)}% |`),
    "",
    "| function | file:line | area | self ms | share |",
    "| --- | --- | --- | ---: | ---: |",
    ...s.top
      .slice(0, top)
      .map(
        (r) =>
          `| \`${r.name}\` | ${r.file || "–"} | ${r.area} | ${r.ms.toFixed(0)} | ${r.pct.toFixed(1)}% |`,
      ),
  ];
  if (s.own.length > 0) {
    const self = new Map(s.own.map((r) => [`${r.name} ${r.file}`, r]));
    lines.push(
      "",
      "Keygate's own functions (src/), by total time (the function and all it calls; nested ones overlap) with their self time:",
      "",
      "| function | file:line | total ms | total share | self ms | self share |",
      "| --- | --- | ---: | ---: | ---: | ---: |",
      ...s.ownTotal.slice(0, 14).map((r) => {
        const own = self.get(`${r.name} ${r.file}`);
        return `| \`${r.name}\` | ${r.file} | ${r.ms.toFixed(0)} | ${r.pct.toFixed(1)}% | ${own ? own.ms.toFixed(1) : "<0.1"} | ${own ? `${own.pct.toFixed(2)}%` : "–"} |`;
      }),
    );
  }
  return lines.join("\n");
}

// CLI
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith("--"));
  if (!file) {
    process.stderr.write(
      "usage: node --import tsx bench/cpuprofile.ts <file.cpuprofile> [--top N] [--last-seconds S]\n",
    );
    process.exit(2);
  }
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const last = opt("--last-seconds");
  const window = last ? { from: profile.endTime - last * 1e6, to: profile.endTime } : undefined;
  const top = opt("--top") ?? 20;
  const lines = await sourceLines();
  process.stdout.write(`${summaryMarkdown(summarise(profile, { top, window, lines }), top)}\n`);
}
