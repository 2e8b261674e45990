import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE, freshDatabase } from "./helpers.js";
import { call, type Server, startKeygate } from "./process.js";

/**
 * Long values in every string a client can send, against the real process: however they are
 * shaped, each is answered without holding up the event loop, shown by a health check polled
 * alongside that must keep answering within a second.
 */

type Schema = Record<string, unknown>;
type Doc = { paths: Record<string, Record<string, Schema>> };

/** What made the e-mail pattern backtrack: a long run of dot-separated labels, then a space. */
const LONG_VALUES = [
  `x@${"a.".repeat(100_000)} `,
  `${"x@a.".repeat(40_000)} `,
  "9".repeat(200_000),
  `${"+(".repeat(60_000)}!`,
  `${"0000-00-".repeat(20_000)}T`,
];

/** Whether a (possibly nullable) schema takes a string. */
const takesString = (s: Schema): boolean =>
  s.type === "string" || ((s.anyOf as Schema[] | undefined) ?? []).some(takesString);

describe("long values on every string field", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let dir: string;
  let server: Server;
  let auth: Record<string, string>;
  let key: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "keygate-bounds-"));
    db = await freshDatabase(join(dir, "keygate.db"));
    server = await startKeygate({
      ...process.env,
      KEYGATE_DATABASE_URL: db.url,
      KEYGATE_ADMIN_PASSWORD: "bounds-password",
      KEYGATE_IP_RATE_LIMIT: "0",
      KEYGATE_FAILED_KEY_LIMIT: "0",
    });
    const login = await call(
      server.base,
      "POST",
      "/api/auth/login",
      {},
      { username: "admin", password: "bounds-password" },
    );
    auth = { authorization: `Bearer ${login.json.data.access_token}` };
    const minted = await call(server.base, "POST", "/api/api-keys", auth, {
      name: "bounds",
      scopes: "delete",
    });
    key = minted.json.key;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`are answered with a 4xx while health keeps answering within 1 s (${ENGINE})`, async () => {
    const doc = (await (await fetch(`${server.base}/openapi.json`)).json()) as Doc;
    const probes: { method: string; url: string; body?: string }[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const url = path.replace(/\{[a-z_]+\}/g, "1");
        const content = (op.requestBody as Schema | undefined)?.content as
          Record<string, { schema: Schema }> | undefined;
        const props = (content?.["application/json"]?.schema.properties ?? {}) as Record<
          string,
          Schema
        >;
        for (const [name, schema] of Object.entries(props)) {
          if (!takesString(schema)) continue;
          for (const value of LONG_VALUES) {
            probes.push({
              method: method.toUpperCase(),
              url,
              body: JSON.stringify({ [name]: value }),
            });
          }
        }
        for (const p of (op.parameters ?? []) as { in: string; name: string; schema: Schema }[]) {
          if (p.in !== "query" || !takesString(p.schema)) continue;
          // Within the 16 KiB a request's head may take.
          const value = encodeURIComponent(`x@${"a.".repeat(3_000)} `);
          probes.push({ method: method.toUpperCase(), url: `${url}?${p.name}=${value}` });
        }
      }
    }
    expect(probes.length).toBeGreaterThan(100);

    let running = true;
    const latencies: number[] = [];
    const poll = (async () => {
      while (running) {
        const t = performance.now();
        const res = await fetch(`${server.base}/api/v1/external/system/health`);
        await res.arrayBuffer();
        latencies.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const statuses: string[] = [];
    for (const p of probes) {
      const res = await fetch(server.base + p.url, {
        method: p.method,
        headers: {
          ...auth,
          "x-api-key": key,
          ...(p.body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: p.body,
      });
      const text = await res.text();
      if (res.status >= 500)
        statuses.push(`${p.method} ${p.url}: ${res.status} ${text.slice(0, 200)}`);
      expect(res.headers.get("content-type"), `${p.method} ${p.url}`).toMatch(/^application\/json/);
    }
    running = false;
    await poll;
    expect(statuses).toEqual([]);
    expect(latencies.length).toBeGreaterThan(5);
    expect(Math.max(...latencies)).toBeLessThan(1_000);
  }, 300_000);
});
