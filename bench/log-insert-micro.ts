/**
 * What one call-log row costs SQLite on Keygate's own connection (WAL, synchronous NORMAL,
 * the migrated schema with its indexes): a prepared single-row INSERT per row against one
 * INSERT of ten rows, in 2,000-row transactions, alternating in blocks so that a busy moment
 * of the host hits both. CPU time of this process per row, the median of the blocks.
 *
 *   node --import tsx bench/log-insert-micro.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../src/store/database.js";

const BATCH = 2000;
const BLOCKS = 20;
const PER_BLOCK = 5;
const COLUMNS = `insert into api_key_logs
  (api_key_id, timestamp, method, path, status_code, ip, latency_ms, user_agent, error_code,
   request_id, error_message, second, environment, credential)
  values `;
const TUPLE = `(${Array(14).fill("?").join(", ")})`;

let n = 0;
/** One batch of rows as the call log writes them: one key, a few seconds, unique request ids. */
function batch(): unknown[][] {
  const t = Date.now();
  return Array.from({ length: BATCH }, (_, i) => {
    const at = t + Math.floor(i / 10);
    return [
      1,
      new Date(at).toISOString(),
      "GET",
      "/api/v1/external/whoami",
      200,
      "127.0.0.1",
      0.12,
      "autocannon",
      null,
      `01a24268-2a37-74ba-98f1-${String(n++).padStart(12, "0")}`,
      null,
      Math.floor(at / 1000),
      "live",
      "key",
    ];
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

const dir = mkdtempSync(join(tmpdir(), "keygate-log-insert-"));
try {
  const database = await openDatabase(`sqlite:${join(dir, "keygate.db")}`);
  const conn = database.raw.sqlite;
  if (!conn) throw new Error("not SQLite");
  const writers: Record<string, (rows: unknown[][]) => void> = {};
  for (const rows of [1, 10]) {
    const insert = conn.prepare(COLUMNS + Array(rows).fill(TUPLE).join(", "));
    writers[rows === 1 ? "one row per INSERT" : "ten rows per INSERT"] = conn.transaction(
      (batchRows: unknown[][]) => {
        for (let i = 0; i < batchRows.length; i += rows)
          insert.run(...batchRows.slice(i, i + rows).flat());
      },
    );
  }
  const perRow: Record<string, number[]> = {};
  for (let b = 0; b < BLOCKS + 2; b++) {
    for (const [name, write] of Object.entries(writers)) {
      const batches = Array.from({ length: PER_BLOCK }, batch);
      const cpu = process.cpuUsage();
      for (const rows of batches) write(rows);
      const used = process.cpuUsage(cpu);
      // The first two blocks warm up.
      if (b >= 2) (perRow[name] ??= []).push((used.user + used.system) / (PER_BLOCK * BATCH));
    }
  }
  process.stdout.write(
    `| how | CPU µs per row (median of ${BLOCKS} blocks, min–max) |\n| --- | ---: |\n`,
  );
  for (const [name, xs] of Object.entries(perRow))
    process.stdout.write(
      `| ${name} | ${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}) |\n`,
    );
  await database.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
