import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "./helpers.js";
import {
  call,
  type CommandRun,
  expectOneLine,
  ROOT,
  runKeygate,
  type Server,
  startKeygate,
} from "./process.js";

// `keygate sign` against the real server on a socket: the headers it prints, sent by fetch
// (and by curl, as the command or through -H @-), are what the server's verifier accepts.

const PASSWORD = "admin-password-1";
const dir = mkdtempSync(join(tmpdir(), "keygate-sign-"));
let database: Awaited<ReturnType<typeof freshDatabase>>;
let server: Server;
let admin: Record<string, string>;
let key: string;
let secret: string;
let serviceId: number;

beforeAll(async () => {
  database = await freshDatabase(join(dir, "keygate.db"));
  server = await startKeygate({
    KEYGATE_DATABASE_URL: database.url,
    KEYGATE_ADMIN_PASSWORD: PASSWORD,
    KEYGATE_MASTER_KEY: randomBytes(32).toString("hex"),
  });
  const login = await call(
    server.base,
    "POST",
    "/api/auth/login",
    {},
    { username: "admin", password: PASSWORD },
  );
  admin = { authorization: `Bearer ${login.json.data.access_token}` };
  const minted = await call(server.base, "POST", "/api/api-keys", admin, {
    name: "signed",
    scopes: "write",
    signing: "required",
  });
  expect(minted.status).toBe(201);
  key = minted.json.key;
  secret = minted.json.signing_secret;
  const service = await call(server.base, "POST", "/api/services", admin, {
    name: "Fibre 100",
    price: "19.99",
    download_kbps: 100_000,
    upload_kbps: 20_000,
  });
  serviceId = service.json.data.id;
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const external = (path: string) => `${server.base}/api/v1/external${path}`;

/** The `Name: value` lines printed, as headers. */
function headersOf(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .trimEnd()
      .split("\n")
      .map((l) => {
        const colon = l.indexOf(": ");
        return [l.slice(0, colon), l.slice(colon + 2)];
      }),
  );
}

async function sign(args: string[]): Promise<CommandRun> {
  const r = await runKeygate(["sign", ...args]);
  expect(r.code, r.err).toBe(0);
  return r;
}

function bash(script: string): Promise<CommandRun> {
  const proc = spawn("bash", ["-c", script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout.on("data", (c: Buffer) => (out += c.toString()));
  proc.stderr.on("data", (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    proc.on("error", reject);
    proc.on("close", (code) => resolve({ code, out, err }));
  });
}

describe("keygate sign", () => {
  it("prints the signature headers of a GET that the server accepts, once", async () => {
    const url = external("/whoami");
    const r = await sign(["--key", key, "--secret", secret, "--url", url]);
    expect(r.err).toBe("");
    const headers = headersOf(r.out);
    expect(Object.keys(headers)).toEqual(["Signature-Input", "Signature"]);
    expect(headers["Signature-Input"]).toMatch(
      new RegExp(
        `^sig=\\("@method" "@target-uri"\\);created=\\d+;keyid="${key.slice(0, 12)}";alg="hmac-sha256";nonce="[A-Za-z0-9_-]{22}"$`,
      ),
    );
    expect(headers.Signature).toMatch(/^sig=:[A-Za-z0-9+/]{43}=:$/);
    // Neither the key nor the secret is printed.
    expect(r.out).not.toContain(key);
    expect(r.out).not.toContain(secret.slice(9));

    const res = await fetch(url, { headers: { "X-API-Key": key, ...headers } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { data: { name: string } }).data.name).toBe("signed");
    // The nonce is good once.
    const again = await fetch(url, { headers: { "X-API-Key": key, ...headers } });
    expect(again.status).toBe(401);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe(
      "SIGNATURE_REPLAYED",
    );
  });

  it("signs a body with its Content-Digest: a POST creates a subscriber, a PUT changes it", async () => {
    const url = external("/subscribers");
    const body = JSON.stringify({
      username: `signed-${randomBytes(3).toString("hex")}`,
      password: "auto-generate",
      service_id: serviceId,
    });
    const r = await sign([
      "--key",
      key,
      "--secret",
      secret,
      "--method",
      "post",
      "--url",
      url,
      "--data",
      body,
    ]);
    const headers = headersOf(r.out);
    expect(Object.keys(headers)).toEqual(["Content-Digest", "Signature-Input", "Signature"]);
    expect(headers["Signature-Input"]).toMatch(/^sig=\("@method" "@target-uri" "content-digest"\)/);
    const created = await fetch(url, {
      method: "POST",
      headers: { "X-API-Key": key, "Content-Type": "application/json", ...headers },
      body,
    });
    expect(created.status).toBe(201);
    const id = ((await created.json()) as { data: { id: number } }).data.id;

    const change = JSON.stringify({ full_name: "Changed By A Signed PUT" });
    const put = headersOf(
      (
        await sign([
          "--key",
          key,
          "--secret",
          secret,
          "--method",
          "PUT",
          "--url",
          external(`/subscribers/${id}`),
          "--data",
          change,
        ])
      ).out,
    );
    const changed = await fetch(external(`/subscribers/${id}`), {
      method: "PUT",
      headers: { "X-API-Key": key, "Content-Type": "application/json", ...put },
      body: change,
    });
    expect(changed.status, await changed.clone().text()).toBe(200);

    // Another body under the same headers does not pass: the digest covers the bytes.
    const fresh = headersOf(
      (
        await sign([
          "--key",
          key,
          "--secret",
          secret,
          "--method",
          "PUT",
          "--url",
          external(`/subscribers/${id}`),
          "--data",
          change,
        ])
      ).out,
    );
    const tampered = await fetch(external(`/subscribers/${id}`), {
      method: "PUT",
      headers: { "X-API-Key": key, "Content-Type": "application/json", ...fresh },
      body: JSON.stringify({ full_name: "Someone Else" }),
    });
    expect(tampered.status).toBe(401);
  });

  it("signs a POST when given --data without --method, as curl sends one, and warns of a GET with a body", async () => {
    const url = external("/subscribers");
    const body = JSON.stringify({
      username: `implied-${randomBytes(3).toString("hex")}`,
      password: "auto-generate",
      service_id: serviceId,
    });
    const r = await sign(["--key", key, "--secret", secret, "--url", url, "--data", body]);
    expect(r.err).toBe("");
    const ran = await bash(
      `curl -sS ${JSON.stringify(url)} -H @- -H "X-API-Key: ${key}" -H "Content-Type: application/json" --data-binary '${body}' -o /dev/null -w '%{http_code}' <<'EOF'\n${r.out}EOF`,
    );
    expect(ran.err).toBe("");
    expect(ran.out).toBe("201");

    const get = await sign([
      "--key",
      key,
      "--secret",
      secret,
      "--method",
      "GET",
      "--url",
      external("/whoami"),
      "--data",
      "{}",
    ]);
    expect(get.err).toMatch(
      /^keygate: warning: signed a GET with a body; curl --data-binary sends a POST unless told -X GET/,
    );
    expect(Object.keys(headersOf(get.out))).toEqual([
      "Content-Digest",
      "Signature-Input",
      "Signature",
    ]);
  });

  it("reads the key and secret from files, and its headers go through curl -H @-", async () => {
    const keyFile = join(dir, "key.txt");
    const secretFile = join(dir, "secret.txt");
    writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    const url = external("/subscribers?per_page=1");
    const bin = join(ROOT, "bin", "keygate.mjs");
    const r = await bash(
      `"${process.execPath}" "${bin}" sign --key-file "${keyFile}" --secret-file "${secretFile}" --url '${url}' | curl -sS -o /dev/null -w '%{http_code}' '${url}' -H @- -H "X-API-Key: $(cat "${keyFile}")"`,
    );
    expect(r.err).toBe("");
    expect(r.out).toBe("200");

    // A secret file others can read is named, and still used.
    chmodSync(secretFile, 0o644);
    const warned = await sign(["--key-file", keyFile, "--secret-file", secretFile, "--url", url]);
    expect(warned.err).toMatch(
      /^keygate: warning: --secret-file .* can be read by others \(mode 0644\); anyone who can read it has the signing secret: chmod 600 /,
    );
  });

  it("prints a whole curl command with --curl, holding the key but never the secret", async () => {
    const url = external("/subscribers");
    const body = JSON.stringify({
      username: `curl-${randomBytes(3).toString("hex")}`,
      password: "auto-generate",
      service_id: serviceId,
      full_name: "It's Signed",
    });
    const r = await sign([
      "--key",
      key,
      "--secret",
      secret,
      "--method",
      "POST",
      "--url",
      url,
      "--data",
      body,
      "--curl",
    ]);
    expect(r.out).toMatch(/^curl -sS /);
    expect(r.out).toContain(`-H 'X-API-Key: ${key}'`);
    expect(r.out).toContain("-H 'Content-Type: application/json'");
    expect(r.out).not.toContain(secret.slice(9));
    const ran = await bash(`${r.out.trimEnd()} -o /dev/null -w '%{http_code}'`);
    expect(ran.err).toBe("");
    expect(ran.out).toBe("201");

    const get = await sign([
      "--key",
      key,
      "--secret",
      secret,
      "--url",
      external("/whoami"),
      "--curl",
    ]);
    expect(get.out).not.toContain("-X");
    expect((await bash(`${get.out.trimEnd()} -o /dev/null -w '%{http_code}'`)).out).toBe("200");
  });

  it("refuses wrong input with exit code 2 and one line, printing nothing", async () => {
    const url = external("/whoami");
    const other = `pks_live_${"0".repeat(64)}`;
    const testKey = `pk_test_${"a".repeat(32)}`;
    const cases: [string[], RegExp][] = [
      [["--secret", secret, "--url", url], /sign needs --key <key> or --key-file <path>/],
      [
        ["--key", key, "--url", url],
        /sign needs --secret <signing-secret> or --secret-file <path>/,
      ],
      [["--key", key, "--secret", secret], /sign needs --url <url>, the full address/],
      [
        ["--key", key, "--key-file", join(dir, "key.txt"), "--secret", secret, "--url", url],
        /give --key or --key-file, not both/,
      ],
      [
        ["--key", key, "--secret", secret, "--url", "/api/v1/external/whoami"],
        /--url "\/api\/v1\/external\/whoami" is not an absolute http:\/\/ or https:\/\/ URL/,
      ],
      [
        ["--key", key, "--secret", secret, "--url", "localhost:8080/api/v1/external/whoami"],
        /is not an absolute http:\/\/ or https:\/\/ URL/,
      ],
      [
        ["--key", key, "--secret", "pks_live_abc", "--url", url],
        /the signing secret is not one: pks_live_ or pks_test_ and 64 lowercase hex characters/,
      ],
      [
        ["--key", key, "--secret", key, "--url", url],
        /the signing secret is not one but an API key \(pk_\): --secret takes the key's signing secret, pks_live_ or pks_test_/,
      ],
      [
        ["--key", secret, "--secret", key, "--url", url],
        /the key is not an API key but a signing secret \(pks_\): .*were the two swapped\?/,
      ],
      [
        ["--key", testKey, "--secret", other, "--url", url],
        /the signing secret is a live secret \(pks_live_\) but the key is a test key/,
      ],
      [
        ["--key", "pk_live_short", "--secret", secret, "--url", url],
        /the key is not an API key: pk_live_ or pk_test_ and 32 lowercase hex characters/,
      ],
      [
        ["--key", key, "--secret", secret, "--url", url, "--method", "GET /x"],
        /--method must be an HTTP method such as GET, POST, PUT or DELETE/,
      ],
      [
        ["--key-file", join(dir, "none.txt"), "--secret", secret, "--url", url],
        /cannot read --key-file .*none\.txt: no such file/,
      ],
      [["--key", key, "--secret", secret, "--url", url, "--data"], /option --data needs a value/],
    ];
    const results: CommandRun[] = [];
    for (let i = 0; i < cases.length; i += 6) {
      results.push(
        ...(await Promise.all(
          cases.slice(i, i + 6).map(([args]) => runKeygate(["sign", ...args])),
        )),
      );
    }
    results.forEach((r, i) => {
      const [args, message] = cases[i] as [string[], RegExp];
      expect(r.out, args.join(" ")).toBe("");
      expectOneLine(r, 2, message);
      expect(r.err).not.toContain(secret.slice(9));
      expect(r.err).not.toContain(key.slice(12));
    });
  });

  it("signs with a wrong secret what the server then refuses, naming the base it computed", async () => {
    const url = external("/whoami");
    const r = await sign(["--key", key, "--secret", `pks_live_${"0".repeat(64)}`, "--url", url]);
    const res = await fetch(url, { headers: { "X-API-Key": key, ...headersOf(r.out) } });
    expect(res.status).toBe(401);
    const json = (await res.json()) as {
      error: { code: string; details: { field: string; message: string }[] };
    };
    expect(json.error.code).toBe("SIGNATURE_INVALID");
    const base = json.error.details.find((d) => d.field === "signature_base");
    expect(base?.message).toContain(`"@target-uri": ${url}`);
  });
});
