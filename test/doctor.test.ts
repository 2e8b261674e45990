import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Check,
  clockCheck,
  clockSkewMs,
  diagnose,
  keygateBase,
  type Probe,
  render,
  type Report,
  scrubKey,
  unreachable,
} from "../src/cli/doctor.js";
import { VERSION } from "../src/version.js";
import { freshDatabase } from "./helpers.js";
import {
  call,
  type CommandRun,
  expectOneLine,
  freePort,
  runKeygate,
  type Server,
  startKeygate,
} from "./process.js";

// `keygate doctor` run as an integrator would, against a real Keygate process over HTTP;
// the parts a real server cannot be made to show (a skewed clock, DNS and TLS failures, a
// proxy in the way) against a fake fetch. Doctor needs no database: this runs once.

const dir = mkdtempSync(join(tmpdir(), "keygate-doctor-"));
const DAY = 86_400_000;

/** Every key a test handed to doctor, and everything doctor printed. */
const keys: string[] = [];
const printed: string[] = [];

afterAll(() => {
  // The key never leaves the machine but in X-API-Key: not whole, not its secret part.
  const all = printed.join("\n");
  for (const k of keys) {
    expect(all).not.toContain(k);
    expect(all).not.toContain(k.slice(8));
  }
  rmSync(dir, { recursive: true, force: true });
});

async function doctor(args: string[], input = ""): Promise<CommandRun> {
  const r = await runKeygate(["doctor", ...args], {}, input);
  printed.push(r.out, r.err);
  return r;
}

/** The checklist lines (mark and label) of a plain-text report. */
const marks = (out: string) =>
  out
    .split("\n")
    .filter((l) => /^(?:OK {2}|WARN|FAIL) /.test(l))
    .map((l) => l.slice(0, l.indexOf(":")));

describe("keygate doctor against a real Keygate", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let server: Server;
  let auth: Record<string, string>;
  let alice: number;

  const mint = async (body: Record<string, unknown>) => {
    const res = await call(server.base, "POST", "/api/api-keys", auth, body);
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    const key = res.json.key as string;
    keys.push(key);
    return { key, id: res.json.data.id as number, prefix: res.json.data.key_prefix as string };
  };

  beforeAll(async () => {
    db = await freshDatabase(join(dir, "doctor.db"));
    server = await startKeygate({
      ...process.env,
      KEYGATE_DATABASE_URL: db.url,
      KEYGATE_ADMIN_PASSWORD: "doctor-password",
      KEYGATE_IP_RATE_LIMIT: "0",
      KEYGATE_FAILED_KEY_LIMIT: "0",
      KEYGATE_MASTER_KEY: "ab".repeat(32),
    });
    const login = await call(
      server.base,
      "POST",
      "/api/auth/login",
      {},
      { username: "admin", password: "doctor-password" },
    );
    expect(login.status).toBe(200);
    auth = { authorization: `Bearer ${login.json.data.access_token}` };
    const user = await call(server.base, "POST", "/api/users", auth, {
      username: "alice",
      password: "alice-password",
      role: "reseller",
    });
    expect(user.status).toBe(201);
    alice = user.json.data.id;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it("passes every check for a healthy key, from stdin or --key-file", async () => {
    const expiresAt = new Date(Date.now() + 90 * DAY).toISOString();
    const k = await mint({
      name: "billing",
      owner_id: alice,
      scopes: "write",
      allowed_ips: ["127.0.0.1"],
      expires_at: expiresAt,
    });
    const file = join(dir, "key.txt");
    writeFileSync(file, `${k.key}\n`, { mode: 0o600 });
    // A pasted /api/... tail is cut from --url.
    const [piped, fromFile] = await Promise.all([
      doctor(["--url", server.base], `${k.key}\n`),
      doctor(["--url", `${server.base}/api/v1/external/`, "--key-file", file]),
    ]);
    for (const r of [piped, fromFile]) {
      expect(r.code, r.err + r.out).toBe(0);
      expect(r.err).toBe("");
      expect(r.out.split("\n")[0]).toBe(`keygate doctor ${server.base}`);
      expect(marks(r.out)).toEqual([
        "OK   reachable",
        "OK   health",
        "OK   version",
        "OK   clock",
        "OK   key",
        "OK   expiry",
        "OK   address",
        "OK   scope",
        "OK   owner",
        "OK   rate limit",
      ]);
      expect(r.out).toContain("health: ok (database ok, redis not configured)");
      expect(r.out).toContain(`version: Keygate ${VERSION}\n`);
      expect(r.out).toContain("clock: agrees with the server's");
      expect(r.out).toContain(`key: "billing" (${k.prefix}…) is accepted`);
      expect(r.out).toMatch(/expiry: in (?:89|90) days \(/);
      expect(r.out).toContain("the server sees this machine as 127.0.0.1; allowed_ips 127.0.0.1");
      expect(r.out).toContain("scope: write allows GET, POST and PUT (read, create and change)");
      expect(r.out).toContain('owner: "alice", a reseller, so the key sees only');
      expect(r.out).toContain("NAS needs an admin's key");
      expect(r.out).toMatch(/rate limit: \d+ of 600 requests left this minute \(resets in \d+ s\)/);
      expect(r.out).toMatch(/\nall 10 checks passed\n$/);
      expect(r.out).not.toContain("fix:");
    }
  });

  it("warns when the key file can be read by others, and still runs", async () => {
    const k = await mint({ name: "shared-file" });
    const file = join(dir, "open-key.txt");
    writeFileSync(file, `${k.key}\n`, { mode: 0o644 });
    chmodSync(file, 0o644);
    const r = await doctor(["--url", server.base, "--key-file", file]);
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.err).toContain("can be read by others (mode 0644)");
    expect(r.err).toContain(`chmod 600 ${file}`);
    expect(r.err).not.toContain(k.key);
    chmodSync(file, 0o600);
    const quiet = await doctor(["--url", server.base, "--key-file", file]);
    expect(quiet.err).toBe("");
  });

  it("prints the report as JSON with --json", async () => {
    const k = await mint({ name: "ops", scopes: "delete" });
    const r = await doctor(["--url", server.base, "--json"], k.key);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as Report;
    expect(report).toMatchObject({ url: server.base, ok: true, failed: 0, warnings: 0 });
    expect(report.checks.map((c) => c.check)).toEqual([
      "reach",
      "health",
      "version",
      "clock",
      "key",
      "expiry",
      "address",
      "scope",
      "owner",
      "rate_limit",
    ]);
    expect(report.checks.every((c) => c.status === "ok")).toBe(true);
    const by = (name: string) => report.checks.find((c) => c.check === name) as Check;
    expect(by("key").data).toMatchObject({ id: k.id, name: "ops", key_prefix: k.prefix });
    expect(by("address").data).toEqual({ client_ip: "127.0.0.1", allowed_ips: null });
    expect(by("scope").summary).toContain("every method");
    expect(by("owner").data).toMatchObject({ username: "admin", role: "admin" });
    expect(by("rate_limit").data).toMatchObject({ limit: 600 });
    expect(by("version").data).toEqual({ server: VERSION, cli: VERSION });
  });

  it("names a test key and a key's own permissions in words", async () => {
    const k = await mint({
      name: "sandbox",
      environment: "test",
      permissions: ["subscribers:read", "transactions:write"],
    });
    expect(k.prefix.startsWith("pk_test_")).toBe(true);
    const r = await doctor(["--url", server.base, "--json"], k.key);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as Report;
    const by = (name: string) => report.checks.find((c) => c.check === name) as Check;
    expect(by("key").summary).toContain("a test key: it sees and changes test data only");
    expect(by("key").data).toMatchObject({ environment: "test" });
    expect(by("scope").status).toBe("ok");
    expect(by("scope").summary).toBe(
      "permissions subscribers:read, transactions:write: can read subscribers; read and write transactions; cannot delete anything",
    );
  });

  it("fails on a closed port: connection refused, named with the fix", async () => {
    const port = await freePort();
    const r = await doctor(["--url", `http://127.0.0.1:${port}`], keys[0] ?? "");
    expectOneLine(r, 1, /doctor: 1 check failed at http:\/\/127\.0\.0\.1:\d+/);
    expect(marks(r.out)).toEqual(["FAIL reachable"]);
    expect(r.out).toContain(
      `connection refused by 127.0.0.1:${port}: nothing listens on that port`,
    );
    expect(r.out).toContain("      fix: start Keygate there, or correct the port");
    expect(r.out).toContain("the other checks need a reachable Keygate");
  });

  it("fails on a revoked key with the server's message", async () => {
    const k = await mint({ name: "old" });
    expect((await call(server.base, "DELETE", `/api/api-keys/${k.id}`, auth)).status).toBe(200);
    const r = await doctor(["--url", server.base], k.key);
    expectOneLine(r, 1, /doctor: 1 check failed/);
    expect(marks(r.out)).toEqual([
      "OK   reachable",
      "OK   health",
      "OK   version",
      "OK   clock",
      "FAIL key",
    ]);
    expect(r.out).toContain("FAIL key: refused API_KEY_REVOKED: the key is revoked\n");
    expect(r.out).toContain(
      `fix: this key (${k.prefix}…) was revoked. Ask an admin for a new key.`,
    );
    expect(r.out).toContain("the key's other checks need it accepted");
  });

  it("fails on a key that requires signed requests, saying what doctor cannot do", async () => {
    const k = await mint({ name: "signed", signing: "required" });
    const r = await doctor(["--url", server.base], k.key);
    expectOneLine(r, 1, /doctor: 1 check failed/);
    expect(r.out).toContain(
      "FAIL key: refused SIGNATURE_REQUIRED: the key requires signed requests, and doctor sends the key alone\n",
    );
    expect(r.out).toContain("keygate sign prints the headers");
  });

  it("fails on an expired key with the server's message", async () => {
    const expiresAt = new Date(Date.now() + 1_500).toISOString();
    const k = await mint({ name: "brief", expires_at: expiresAt });
    await new Promise((r) => setTimeout(r, Date.parse(expiresAt) - Date.now() + 200));
    const r = await doctor(["--url", server.base], k.key);
    expectOneLine(r, 1, /doctor: 1 check failed/);
    expect(r.out).toContain("FAIL key: refused API_KEY_EXPIRED: the key has expired\n");
    expect(r.out).toContain(`fix: this key (${k.prefix}…) expired at ${expiresAt}.`);
  });

  it("fails on a key this Keygate does not know", async () => {
    const unknown = `pk_live_${"0123456789abcdef".repeat(2)}`;
    keys.push(unknown);
    const r = await doctor(["--url", server.base], unknown);
    expectOneLine(r, 1, /doctor: 1 check failed/);
    expect(r.out).toContain(
      "FAIL key: refused INVALID_API_KEY: this Keygate does not take this key",
    );
    expect(r.out).toContain("fix: no key with this value exists on this Keygate");
  });

  it("fails on a key whose allow-list excludes this machine, naming the address seen", async () => {
    const k = await mint({ name: "office", allowed_ips: ["10.0.0.0/8"] });
    const r = await doctor(["--url", server.base, "--json"], k.key);
    expectOneLine(r, 1, /doctor: 1 check failed/);
    const report = JSON.parse(r.out) as Report;
    const last = report.checks.at(-1) as Check;
    expect(last).toMatchObject({ check: "address", status: "fail" });
    expect(last.summary).toBe(
      "refused IP_NOT_ALLOWED: the server sees this machine as 127.0.0.1, outside the key's allowed_ips",
    );
    expect(last.fix).toContain("requests from 127.0.0.1 are not allowed");
    expect(last.fix).toContain(`PUT /api/api-keys/${k.id}`);
    expect(last.data).toMatchObject({ code: "IP_NOT_ALLOWED", http_status: 403 });
    // The refusal does not give the list away, and neither does doctor.
    expect(r.out).not.toContain("10.0.0.0");
  });

  it("warns about a key close to expiry and exits 0", async () => {
    const k = await mint({ name: "soon", expires_at: new Date(Date.now() + 3 * DAY + 3_600_000) });
    const r = await doctor(["--url", server.base], k.key);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe("");
    expect(r.out).toMatch(/\nWARN expiry: in 3 days \(\S+\), under 14 days\n/);
    expect(r.out).toContain(
      `fix: ask its owner or an admin to move expires_at (the console, or PUT /api/api-keys/${k.id})`,
    );
    expect(r.out).toMatch(/\n1 warning, 9 passed\n$/);
  });

  it("warns about a rolled key in its grace period, naming the replacement", async () => {
    const k = await mint({ name: "rolling" });
    const rolled = await call(server.base, "POST", `/api/api-keys/${k.id}/roll`, auth, {
      grace_period_hours: 1,
    });
    expect(rolled.status).toBe(201);
    keys.push(rolled.json.key);
    const next = rolled.json.data.key_prefix as string;
    const r = await doctor(["--url", server.base], k.key);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(
      new RegExp(`\\nWARN rolled: this key was rolled into ${next}… and works only until \\S+\\n`),
    );
    expect(r.out).toContain(`fix: switch to the replacement (${next}…) before then`);
    expect(r.out).toMatch(/\nWARN expiry: in (?:59|60) minutes/);
  });

  it("refuses a missing or empty key, a key on the command line and a bad --url, exit 2", async () => {
    const url = server.base;
    const secret = `pk_live_${"fedcba9876543210".repeat(2)}`;
    keys.push(secret);
    const cases: [string[], string, RegExp][] = [
      [["--url", url], "", /no API key on stdin: pipe it in .* or pass --key-file <path>/],
      [["--url", url], " \n\n", /no API key on stdin/],
      [["--url", url], `${secret}\n${secret}\n`, /stdin holds more than one line/],
      [["--url", url, "--key", secret], "", /takes no key on the command line/],
      [
        ["--url", url, "--key-file", join(dir, "none.txt")],
        "",
        /cannot read --key-file .*: no such file/,
      ],
      [[], secret, /doctor needs --url <base>/],
      [["--url", "keygate.example.com"], secret, /did you mean https:\/\/keygate\.example\.com\?/],
      [["--url", "127.0.0.1:8080"], secret, /did you mean http:\/\/127\.0\.0\.1:8080\?/],
      [["--url", "localhost:8080"], secret, /did you mean http:\/\/localhost:8080\?/],
      [["--url", "ftp://example.com"], secret, /is not an http:\/\/ or https:\/\/ address/],
      [["--url", url, "--timeout", "0"], secret, /--timeout must be a number of seconds/],
      [["--url"], "", /option --url needs a value/],
    ];
    const results = await Promise.all(cases.map(([args, input]) => doctor(args, input)));
    results.forEach((r, i) => {
      const [args, , message] = cases[i] as [string[], string, RegExp];
      expect(r.out, args.join(" ")).toBe("");
      expectOneLine(r, 2, message);
    });
  });

  it("is listed in keygate --help and has its own --help", async () => {
    const [main, own] = await Promise.all([
      runKeygate(["--help"]),
      runKeygate(["doctor", "--help"]),
    ]);
    expect(main.code).toBe(0);
    expect(main.out).toMatch(/\n {2}doctor +check an integration from its machine/);
    expect(own.code).toBe(0);
    expect(own.out).toMatch(/^Usage: keygate doctor --url <base> \[--key-file <path>\]/);
    for (const word of ["--key-file", "--json", "never from the command line", "Exit codes"])
      expect(own.out).toContain(word);
  });
});

/** A fetch that answers from a table of paths, as a Keygate (or what stands in its place) would. */
function fakeFetch(
  answer: (path: string, headers: Headers) => Response | Promise<Response>,
): typeof globalThis.fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    return answer(url.pathname, new Headers(init?.headers));
  }) as typeof globalThis.fetch;
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

const NOW = Date.parse("2026-06-01T12:00:00Z");
const KEY = `pk_live_${"a1b2c3d4".repeat(4)}`;

const healthy = (date = new Date(NOW).toUTCString(), redis = "ok") =>
  json(
    {
      success: true,
      data: {
        status: redis === "down" ? "degraded" : "ok",
        version: VERSION,
        uptime_s: 5,
        database: "ok",
        redis,
      },
    },
    200,
    { date },
  );

const whoami = (over: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  json({ success: true, data: { ...whoamiBody(), ...over } }, 200, {
    "ratelimit-limit": "600",
    "ratelimit-remaining": "599",
    "ratelimit-reset": "30",
    ...headers,
  });

function probe(fetch: typeof globalThis.fetch): Probe {
  return { fetch, now: () => NOW, timeoutMs: 5_000 };
}

const checkOf = (r: Report, name: string) => r.checks.find((c) => c.check === name);

describe("keygate doctor's checks, against a fake fetch", () => {
  it("reads the clock skew from the Date header and warns past 30 s", async () => {
    // Whole seconds: the server's time lies in [Date, Date + 1 s).
    expect(clockSkewMs(new Date(NOW).toUTCString(), NOW - 100, NOW + 100)).toBe(500);
    expect(clockSkewMs(null, NOW, NOW)).toBeNull();
    expect(clockSkewMs("yesterday-ish", NOW, NOW)).toBeNull();
    expect(clockCheck(1_500).status).toBe("ok");
    expect(clockCheck(-20_000)).toMatchObject({
      status: "ok",
      summary: "this machine is 20 s ahead of the server (under 30 s)",
    });
    expect(clockCheck(null).status).toBe("warn");

    const ahead = new Date(NOW + 45_000).toUTCString();
    const r = await diagnose(
      "https://keygate.example.com",
      KEY,
      probe(fakeFetch((path) => (path.endsWith("/health") ? healthy(ahead) : whoami()))),
    );
    expect(r.ok).toBe(true);
    expect(checkOf(r, "clock")).toMatchObject({
      status: "warn",
      summary: "this machine is 46 s behind the server",
      data: { skew_s: 46 },
    });
    expect(checkOf(r, "clock")?.fix).toContain("NTP");
  });

  it("judges expiry by the server's clock", async () => {
    // The server runs 2 days ahead: a key 15 days out by this machine's clock has 13 left.
    const ahead = new Date(NOW + 2 * DAY).toUTCString();
    const expires = new Date(NOW + 15 * DAY).toISOString();
    const r = await diagnose(
      "https://keygate.example.com",
      KEY,
      probe(
        fakeFetch((p) =>
          p.endsWith("/health") ? healthy(ahead) : whoami({ expires_at: expires }),
        ),
      ),
    );
    expect(checkOf(r, "expiry")).toMatchObject({ status: "warn", data: { days_left: 12 } });
  });

  it("names DNS, refused, timeout, reset and TLS failures, each with its fix", () => {
    const failed = (code: string, message = "x") =>
      Object.assign(new TypeError("fetch failed"), {
        cause: Object.assign(new Error(message), { code }),
      });
    const url = "https://keygate.example.com/api/v1/external/system/health";
    const cases: [unknown, RegExp, RegExp][] = [
      [failed("ENOTFOUND"), /^DNS: keygate\.example\.com does not resolve/, /typos/],
      [failed("EAI_AGAIN"), /^DNS: looking up/, /resolver/],
      [failed("ECONNREFUSED"), /^connection refused by keygate\.example\.com/, /KEYGATE_PORT/],
      [
        new DOMException("timed out", "TimeoutError"),
        /^timeout: no answer .* within 5 s/,
        /--timeout/,
      ],
      [failed("UND_ERR_CONNECT_TIMEOUT"), /^timeout: the connection/, /firewall/],
      [failed("UND_ERR_SOCKET"), /closed the connection before answering/, /proxy or firewall/],
      [failed("CERT_HAS_EXPIRED"), /^TLS: the certificate of .* has expired/, /renew/],
      [failed("DEPTH_ZERO_SELF_SIGNED_CERT"), /^TLS: .* self-signed/, /NODE_EXTRA_CA_CERTS/],
      [failed("UNABLE_TO_VERIFY_LEAF_SIGNATURE"), /^TLS: the certificate chain/, /intermediates/],
      [failed("ERR_TLS_CERT_ALTNAME_INVALID"), /^TLS: the certificate is not issued for/, /name/],
      [failed("ERR_SSL_WRONG_VERSION_NUMBER"), /^TLS: .* does not speak TLS/, /http:\/\//],
      [
        new TypeError("fetch failed", { cause: new Error("bad port") }),
        /blocked port/,
        /another port/,
      ],
    ];
    for (const [err, summary, fix] of cases) {
      const u = unreachable(err, url, 5_000);
      expect(u.summary).toMatch(summary);
      expect(u.fix).toMatch(fix);
    }
    // Several addresses refused at once (IPv6 and IPv4): the first one's code names it.
    const both = Object.assign(new TypeError("fetch failed"), {
      cause: Object.assign(
        new AggregateError([Object.assign(new Error("a"), { code: "ECONNREFUSED" })]),
        {},
      ),
    });
    expect(unreachable(both, url, 5_000).code).toBe("ECONNREFUSED");
  });

  it("reports a redirect instead of following it with the key", async () => {
    let keySent = false;
    const r = await diagnose(
      "http://keygate.example.com",
      KEY,
      probe(
        fakeFetch((_p, h) => {
          if (h.has("x-api-key")) keySent = true;
          return new Response(null, {
            status: 301,
            headers: { location: "https://keygate.example.com/api/v1/external/system/health" },
          });
        }),
      ),
    );
    expect(keySent).toBe(false);
    expect(r.ok).toBe(false);
    expect(checkOf(r, "transport")?.status).toBe("warn");
    expect(checkOf(r, "health")).toMatchObject({ status: "fail" });
    expect(checkOf(r, "health")?.fix).toContain("--url https://keygate.example.com");
  });

  it("says when --url is not a Keygate, the server is degraded, or a proxy drops headers", async () => {
    const page = await diagnose(
      "https://example.com",
      KEY,
      probe(
        fakeFetch(
          () => new Response("<html>", { status: 404, headers: { "content-type": "text/html" } }),
        ),
      ),
    );
    expect(checkOf(page, "health")?.summary).toContain(
      "404 with an HTML page: this is not Keygate's health check",
    );
    expect(page.checks.map((c) => c.check)).toEqual(["reach", "health"]);

    const proxied = await diagnose(
      "https://keygate.example.com",
      KEY,
      probe(
        fakeFetch((p) =>
          p.endsWith("/health")
            ? healthy(new Date(NOW).toUTCString(), "down")
            : // Through a proxy Keygate does not trust, which drops the RateLimit-* headers too.
              json({ success: true, data: { ...whoamiBody(), client_ip: "127.0.0.1" } }),
        ),
      ),
    );
    expect(proxied.ok).toBe(true);
    expect(checkOf(proxied, "health")).toMatchObject({
      status: "warn",
      summary: "degraded (database ok, redis down)",
    });
    expect(checkOf(proxied, "address")?.status).toBe("warn");
    expect(checkOf(proxied, "address")?.fix).toContain("KEYGATE_TRUST_PROXY");
    expect(checkOf(proxied, "rate_limit")?.status).toBe("warn");

    const missing = await diagnose(
      "https://keygate.example.com",
      KEY,
      probe(
        fakeFetch((p) =>
          p.endsWith("/health")
            ? healthy()
            : json(
                {
                  success: false,
                  error: { code: "MISSING_API_KEY", message: "send your API key" },
                },
                401,
              ),
        ),
      ),
    );
    expect(checkOf(missing, "key")?.fix).toContain("may drop the X-API-Key header");
  });

  it("warns when the key's budget is nearly used", async () => {
    const r = await diagnose(
      "https://keygate.example.com",
      KEY,
      probe(
        fakeFetch((p) =>
          p.endsWith("/health") ? healthy() : whoami({}, { "ratelimit-remaining": "3" }),
        ),
      ),
    );
    expect(checkOf(r, "rate_limit")).toMatchObject({
      status: "warn",
      summary: "3 of 600 requests left this minute (resets in 30 s)",
    });
  });

  it("draws ✓ ✗ ! on a terminal and OK FAIL WARN elsewhere, with the fix under each problem", () => {
    const r: Report = {
      url: "https://keygate.example.com",
      ok: false,
      passed: 1,
      warnings: 1,
      failed: 1,
      checks: [
        { check: "reach", status: "ok", summary: "answered" },
        { check: "clock", status: "warn", summary: "off", fix: "sync it" },
        { check: "key", status: "fail", summary: "refused\u001b[31m", fix: "mint one" },
      ],
      skipped: "the key's other checks need it accepted",
    };
    expect(render(r, true)).toBe(
      [
        "keygate doctor https://keygate.example.com",
        "✓ reachable: answered",
        "! clock: off",
        "  → sync it",
        "✗ key: refused?[31m",
        "  → mint one",
        "1 failed, 1 warning, 1 passed; the key's other checks need it accepted",
        "",
      ].join("\n"),
    );
    expect(render(r, false)).toContain("WARN clock: off\n      fix: sync it\nFAIL key:");
  });

  it("cuts the key from anything printed and takes --url apart", () => {
    expect(scrubKey(`a ${KEY} b ${KEY.slice(8)}`, KEY)).toBe(`a ${KEY.slice(0, 12)}… b …`);
    expect(keygateBase("https://kg.example.com/")).toBe("https://kg.example.com");
    expect(keygateBase("https://kg.example.com:8443/keygate/api/v1/external/whoami?x=1")).toBe(
      "https://kg.example.com:8443/keygate",
    );
    expect(() => keygateBase("https://user:pw@kg.example.com")).toThrow(/user name or password/);
  });
});

function whoamiBody() {
  return {
    id: 7,
    name: "billing",
    key_prefix: KEY.slice(0, 12),
    scopes: "read",
    owner: { id: 1, username: "admin", role: "admin" },
    expires_at: null,
    rate_limit_per_minute: 600,
    allowed_ips: null,
    client_ip: "203.0.113.7",
    replaced_by_prefix: null,
  };
}
