import { isIP } from "node:net";
import { parsePermissions, summarize } from "../keys/permissions.js";
import { VERSION } from "../version.js";
import {
  type Command,
  Failure,
  type Io,
  printable,
  readSecretFile,
  UsageError,
} from "./command.js";
import { readAll, readHidden } from "./prompt.js";

// `keygate doctor`: an integration diagnosed from the integrator's machine, through the
// external surface alone (health and whoami over HTTP), so it needs no database and works
// against any Keygate. The key travels only in X-API-Key and is never printed.

export const HEALTH_PATH = "/api/v1/external/system/health";
export const WHOAMI_PATH = "/api/v1/external/whoami";
/** A clock further off than this from the server's is a warning. */
export const SKEW_WARN_S = 30;
/** A key that expires sooner than this is a warning. */
export const EXPIRY_WARN_DAYS = 14;
const DAY_MS = 86_400_000;

export type Status = "ok" | "warn" | "fail";

export type Check = {
  /** Which check: reach, transport, health, version, clock, key, rolled, expiry, address,
   * scope, owner, rate_limit. */
  check: string;
  status: Status;
  /** What was found, one line. */
  summary: string;
  /** What to do about it, one line; set on every warning and failure. */
  fix?: string;
  data?: Record<string, unknown>;
};

export type Report = {
  url: string;
  ok: boolean;
  passed: number;
  warnings: number;
  failed: number;
  checks: Check[];
  /** Why the checks after the last one were not run, when they were not. */
  skipped?: string;
};

/** What the checks reach the world through: global fetch and the clock, outside tests. */
export type Probe = {
  fetch: typeof globalThis.fetch;
  now: () => number;
  timeoutMs: number;
};

const LABEL: Record<string, string> = {
  reach: "reachable",
  transport: "transport",
  health: "health",
  version: "version",
  clock: "clock",
  key: "key",
  rolled: "rolled",
  expiry: "expiry",
  address: "address",
  scope: "scope",
  owner: "owner",
  rate_limit: "rate limit",
};

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

/**
 * The Keygate address integrations call, from `--url`: scheme, host, port and any path
 * prefix of a proxy, without a trailing slash or a pasted `/api/...` tail.
 */
export function keygateBase(raw: string): string {
  const shown = printable(raw);
  let url: URL | null;
  try {
    url = new URL(raw);
  } catch {
    url = null;
  }
  if (url === null || (url.protocol !== "http:" && url.protocol !== "https:")) {
    // A machine of one's own is most often reached over plain http (npm start listens so).
    const local = /^(localhost|127\.|\[::1\])/i.test(raw);
    const hint = raw.includes("://")
      ? ""
      : ` (did you mean ${local ? "http" : "https"}://${shown}?)`;
    throw new UsageError(
      `--url "${shown}" is not an http:// or https:// address${hint}; give the address integrations call, such as https://keygate.example.com`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new UsageError(
      "--url holds a user name or password; leave them out (Keygate reads the key from X-API-Key only)",
    );
  }
  let path = url.pathname;
  const api = path.indexOf("/api/");
  if (api !== -1) path = path.slice(0, api);
  else if (path.endsWith("/api")) path = path.slice(0, -4);
  while (path.endsWith("/")) path = path.slice(0, -1);
  return `${url.origin}${path}`;
}

/** The key as read, checked for what no HTTP header can carry; the server judges the rest. */
export function cleanKey(raw: string, from: string): string {
  const key = raw.trim();
  if (key === "") {
    throw new UsageError(
      from === "stdin"
        ? "no API key on stdin: pipe it in (keygate doctor --url <base> < key.txt) or pass --key-file <path>"
        : `${from} is empty; put the key in it`,
    );
  }
  if (/[\r\n]/.test(key)) {
    throw new UsageError(`${from} holds more than one line; put the key alone in it`);
  }
  if (/[^\x20-\x7e]/.test(key)) {
    throw new UsageError(
      `the key in ${from} holds control or non-ASCII characters, which no HTTP header carries; a key is pk_live_ and 32 lowercase hex characters`,
    );
  }
  return key;
}

/** Removes the key (and its secret part) from text, leaving its 12-character display prefix. */
export function scrubKey(text: string, key: string): string {
  if (key.length < 16) return text;
  let out = text.split(key).join(`${key.slice(0, 12)}…`);
  const secret = key.slice(8);
  if (secret.length >= 16) out = out.split(secret).join("…");
  return out;
}

const isLoopbackHost = (host: string): boolean => {
  const h = host.replace(/^\[|\]$/g, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  return isLoopbackIp(h);
};
const isLoopbackIp = (ip: string): boolean => {
  const v = ip.startsWith("::ffff:") ? ip.slice(7) : ip;
  if (isIP(v) === 4) return v.startsWith("127.");
  return v === "::1";
};

/** Why a request did not get an answer, named, and what to do about it. */
export function unreachable(
  err: unknown,
  target: string,
  timeoutMs: number,
): { summary: string; fix: string; code: string } {
  const url = new URL(target);
  const host = url.host;
  const e = err as { name?: string; message?: string; cause?: unknown };
  if (e?.name === "TimeoutError" || e?.name === "AbortError") {
    return {
      code: "TIMEOUT",
      summary: `timeout: no answer from ${host} within ${timeoutMs / 1000} s`,
      fix: "check that Keygate runs there and no firewall drops the port; a slow link may need a longer --timeout",
    };
  }
  const cause = (isObject(e?.cause) ? e.cause : {}) as {
    code?: unknown;
    message?: unknown;
    errors?: { code?: unknown }[];
  };
  const code = str(cause.code) ?? str(cause.errors?.[0]?.code) ?? "";
  const detail = str(cause.message) ?? e?.message ?? String(err);
  const tls = (summary: string, fix: string) => ({ code, summary: `TLS: ${summary}`, fix });
  switch (code) {
    case "ENOTFOUND":
    case "EAI_NONAME":
    case "EAI_FAIL":
      return {
        code,
        summary: `DNS: ${url.hostname} does not resolve (${code})`,
        fix: "check the host name for typos, and this machine's DNS (a private name may need the VPN or an /etc/hosts entry)",
      };
    case "EAI_AGAIN":
      return {
        code,
        summary: `DNS: looking up ${url.hostname} failed for now (EAI_AGAIN)`,
        fix: "check that this machine's DNS resolver is reachable, then run doctor again",
      };
    case "ECONNREFUSED":
      return {
        code,
        summary: `connection refused by ${host}: nothing listens on that port`,
        fix: "start Keygate there, or correct the port in --url (the server's KEYGATE_PORT, 8080 by default)",
      };
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return {
        code,
        summary: `timeout: the connection to ${host} was not accepted in time (${code})`,
        fix: "a firewall may drop the port, or the host is down: check both",
      };
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return {
        code,
        summary: `timeout: ${host} accepted the connection but did not answer (${code})`,
        fix: "check that it is Keygate that listens there, and that it is not overloaded",
      };
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return {
        code,
        summary: `no route to ${host} (${code})`,
        fix: "check the network path from this machine: VPN, routes, firewall",
      };
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return {
        code,
        summary: `${host} closed the connection before answering (${code})`,
        fix:
          url.protocol === "http:"
            ? "check the scheme and port: this may be a TLS port (use https://), or a proxy or firewall cuts the connection"
            : "check the port, and any proxy or firewall between this machine and Keygate",
      };
    case "CERT_HAS_EXPIRED":
      return tls(
        `the certificate of ${url.hostname} has expired`,
        "renew the certificate on the server or the proxy in front of it",
      );
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
      return tls(
        `the certificate of ${url.hostname} is self-signed, which this machine does not trust (${code})`,
        "use a certificate from a trusted CA, or trust this one here (NODE_EXTRA_CA_CERTS=/path/to/ca.pem)",
      );
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "UNABLE_TO_GET_ISSUER_CERT":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
      return tls(
        `the certificate chain of ${url.hostname} cannot be verified (${code})`,
        "serve the full chain (with its intermediates) on the server; for a private CA, NODE_EXTRA_CA_CERTS=/path/to/ca.pem here",
      );
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return tls(
        `the certificate is not issued for ${url.hostname}`,
        "call Keygate by a name its certificate names, or get a certificate for this one",
      );
    case "ERR_SSL_WRONG_VERSION_NUMBER":
    case "EPROTO":
      return tls(
        `${host} does not speak TLS (${code})`,
        "this looks like a plain-HTTP port: use http:// for it, or the port TLS is served on",
      );
  }
  if (/CERT|SSL|TLS/.test(code)) {
    return tls(
      `the handshake with ${host} failed (${code}: ${detail})`,
      "check the server's certificate and TLS settings",
    );
  }
  if (detail === "bad port") {
    return {
      code: "BAD_PORT",
      summary: `port ${url.port} is one HTTP clients refuse to call (a blocked port)`,
      fix: "serve Keygate on another port (KEYGATE_PORT) and call that",
    };
  }
  return {
    code: code || "NETWORK_ERROR",
    summary: `could not reach ${host}: ${detail}${code ? ` (${code})` : ""}`,
    fix: "check the address, and that Keygate runs there",
  };
}

/**
 * The server's clock minus this machine's, in ms, from an answer's Date header (whole
 * seconds: the server's time lies in [Date, Date + 1 s)), against the middle of the round
 * trip; null without a usable header.
 */
export function clockSkewMs(
  date: string | null,
  sentAt: number,
  receivedAt: number,
): number | null {
  if (date === null) return null;
  const server = Date.parse(date);
  if (Number.isNaN(server)) return null;
  return server + 500 - (sentAt + receivedAt) / 2;
}

export function clockCheck(skewMs: number | null): Check {
  if (skewMs === null) {
    return {
      check: "clock",
      status: "warn",
      summary: "the answer carried no Date header, so the clocks could not be compared",
      fix: "let the Date header through the proxy in front of Keygate, or compare the clocks by hand",
    };
  }
  const s = Math.round(Math.abs(skewMs) / 1000);
  const data = { skew_s: Math.round(skewMs / 1000) };
  if (Math.abs(skewMs) <= 2000) {
    return {
      check: "clock",
      status: "ok",
      summary: "agrees with the server's (within 2 s)",
      data,
    };
  }
  // A positive skew is a server ahead of this machine.
  const side = skewMs > 0 ? "behind" : "ahead of";
  if (s <= SKEW_WARN_S) {
    return {
      check: "clock",
      status: "ok",
      summary: `this machine is ${s} s ${side} the server (under ${SKEW_WARN_S} s)`,
      data,
    };
  }
  return {
    check: "clock",
    status: "warn",
    summary: `this machine is ${s} s ${side} the server`,
    fix: "one of the two clocks is wrong: keep both in sync with NTP (timedatectl set-ntp true); expiry is judged by the server's clock",
    data,
  };
}

/** A duration for people: minutes, hours or days. */
function span(ms: number): string {
  const min = Math.floor(ms / 60_000);
  if (min < 120) return `${Math.max(min, 0)} minute${min === 1 ? "" : "s"}`;
  const h = Math.floor(ms / 3_600_000);
  if (h < 48) return `${h} hours`;
  return `${Math.floor(ms / DAY_MS)} days`;
}

function expiryCheck(expiresAt: string | null, keyId: unknown, serverNow: number): Check {
  if (expiresAt === null) return { check: "expiry", status: "ok", summary: "never expires" };
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) {
    return { check: "expiry", status: "ok", summary: `expires at ${expiresAt}` };
  }
  const left = at - serverNow;
  const data = { expires_at: expiresAt, days_left: Math.floor(left / DAY_MS) };
  if (left >= EXPIRY_WARN_DAYS * DAY_MS) {
    return { check: "expiry", status: "ok", summary: `in ${span(left)} (${expiresAt})`, data };
  }
  const where = typeof keyId === "number" ? `PUT /api/api-keys/${keyId}` : "PUT /api/api-keys/:id";
  return {
    check: "expiry",
    status: "warn",
    summary: `in ${span(left)} (${expiresAt}), under ${EXPIRY_WARN_DAYS} days`,
    fix: `ask its owner or an admin to move expires_at (the console, or ${where}) or to roll the key, and deploy the new key before then`,
    data,
  };
}

const SCOPE_WORDS: Record<string, string> = {
  read: "GET only (list and read); POST and PUT need a write key, DELETE a delete key",
  write: "GET, POST and PUT (read, create and change); DELETE needs a delete key",
  delete: "every method (read, create, change and DELETE)",
};

function scopeCheck(scopes: string, permissions: unknown): Check {
  const list = Array.isArray(permissions) ? permissions.map(String) : null;
  if (scopes === "custom" && list !== null) {
    const parsed = parsePermissions(list);
    const words = parsed.ok ? summarize(parsed.mask) : "(permissions this command does not know)";
    return {
      check: "scope",
      status: parsed.ok ? "ok" : "warn",
      summary: `permissions ${list.join(", ")}: ${words}`,
      ...(parsed.ok ? {} : { fix: "compare this keygate command's version with the server's" }),
      data: { scopes, permissions: list },
    };
  }
  const words = SCOPE_WORDS[scopes];
  if (words === undefined) {
    return {
      check: "scope",
      status: "warn",
      summary: `"${scopes}", a scope this command does not know`,
      fix: "compare this keygate command's version with the server's",
      data: { scopes },
    };
  }
  return {
    check: "scope",
    status: "ok",
    summary: `${scopes} allows ${words}`,
    data: list === null ? { scopes } : { scopes, permissions: list },
  };
}

function ownerCheck(owner: unknown): Check {
  const o = isObject(owner) ? owner : {};
  const name = str(o.username) ?? "?";
  const role = str(o.role) ?? "?";
  const reach =
    role === "admin"
      ? "so the key sees every subscriber, service and NAS"
      : role === "reseller"
        ? "so the key sees only this reseller's own subscribers (and their transactions and usage); NAS needs an admin's key"
        : "a role this command does not know";
  return {
    check: "owner",
    status: "ok",
    summary: `"${name}", ${role === "admin" ? "an" : "a"} ${role}, ${reach}`,
    data: { id: o.id, username: name, role },
  };
}

function addressCheck(ip: string, allowed: unknown, base: string): Check {
  const list = Array.isArray(allowed) ? allowed.map(String) : null;
  const where = list === null ? "the key works from any address" : `allowed_ips ${list.join(", ")}`;
  const data = { client_ip: ip, allowed_ips: list };
  const host = new URL(base).hostname;
  if (isLoopbackIp(ip) && !isLoopbackHost(host)) {
    return {
      check: "address",
      status: "warn",
      summary: `the server sees this machine as ${ip}, a loopback address, though ${host} is not this machine; ${where}`,
      fix: "Keygate is behind a proxy it does not trust, so every caller looks alike: set KEYGATE_TRUST_PROXY to the proxy's address (allowed_ips and per-IP limits depend on it)",
      data,
    };
  }
  return {
    check: "address",
    status: "ok",
    summary: `the server sees this machine as ${ip}; ${where}`,
    data,
  };
}

function rateCheck(headers: Headers): Check {
  const num = (name: string) => {
    const v = headers.get(name);
    return v === null || !/^\d+$/.test(v.trim()) ? null : Number(v);
  };
  const limit = num("ratelimit-limit");
  const remaining = num("ratelimit-remaining");
  const reset = num("ratelimit-reset");
  if (limit === null || remaining === null) {
    return {
      check: "rate_limit",
      status: "warn",
      summary: "the answer carried no RateLimit-Limit and RateLimit-Remaining headers",
      fix: "let the RateLimit-* headers through the proxy in front of Keygate: clients pace themselves by them",
    };
  }
  const data = { limit, remaining, reset_s: reset };
  const text = `${remaining} of ${limit} requests left this minute${reset === null ? "" : ` (resets in ${reset} s)`}`;
  if (remaining < Math.max(1, limit / 10)) {
    return {
      check: "rate_limit",
      status: "warn",
      summary: text,
      fix: "the key has nearly used its budget: slow down, or ask an admin to raise its rate_limit_per_minute",
      data,
    };
  }
  return { check: "rate_limit", status: "ok", summary: text, data };
}

/** A refusal of whoami: the server's message names the cause and the fix. */
function refusalCheck(code: string, message: string, status: number, headers: Headers): Check {
  const rolled = /replacement (pk_live_[0-9a-f]{4})…/.exec(message)?.[1];
  const data: Json = { code, http_status: status, message };
  if (rolled) data.replaced_by_prefix = rolled;
  const wasRolled = rolled ? `; it was rolled into ${rolled}…` : "";
  const fail = (check: string, summary: string): Check => ({
    check,
    status: "fail",
    summary: `refused ${code}: ${summary}`,
    fix: message,
    data,
  });
  switch (code) {
    case "IP_NOT_ALLOWED": {
      const ip = /^requests from (\S+) are not allowed/.exec(message)?.[1];
      if (ip) data.client_ip = ip;
      return fail(
        "address",
        `the server sees this machine as ${ip ?? "an address"}, outside the key's allowed_ips`,
      );
    }
    case "RATE_LIMIT_EXCEEDED": {
      const wait = headers.get("retry-after");
      return fail("rate_limit", `over budget${wait ? `; retry in ${wait} s` : ""}`);
    }
    case "API_KEY_REVOKED":
      return fail("key", `the key is revoked${wasRolled}`);
    case "API_KEY_EXPIRED":
      return fail("key", `the key has expired${wasRolled}`);
    case "INVALID_API_KEY":
      return fail("key", "this Keygate does not take this key");
    case "INVALID_USER":
      return fail("key", "the key's owner is disabled or deleted");
    case "SIGNATURE_REQUIRED":
      return {
        ...fail("key", "the key requires signed requests, and doctor sends the key alone"),
        fix: "sign each call with the key's signing secret (RFC 9421): keygate sign prints the headers for curl, and the SDK signs by itself. To run doctor's other checks on this key, set its signing to optional for a moment",
      };
    case "MISSING_API_KEY":
      return {
        ...fail("key", "the key was sent in X-API-Key but did not arrive"),
        fix: `a proxy in front of Keygate may drop the X-API-Key header: let it through. (${message})`,
      };
    default:
      return fail("key", `whoami answered ${status}`);
  }
}

type Answer = {
  status: number;
  headers: Headers;
  json: unknown;
  html: boolean;
  sentAt: number;
  receivedAt: number;
};

async function get(probe: Probe, url: string, headers: Record<string, string>): Promise<Answer> {
  const sentAt = probe.now();
  const res = await probe.fetch(url, {
    headers: { accept: "application/json", "user-agent": `keygate-doctor/${VERSION}`, ...headers },
    // A redirect is reported, not followed: it could carry X-API-Key to another host.
    redirect: "manual",
    signal: AbortSignal.timeout(probe.timeoutMs),
  });
  const receivedAt = probe.now();
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const html = (res.headers.get("content-type") ?? "").includes("html");
  return { status: res.status, headers: res.headers, json, html, sentAt, receivedAt };
}

function redirected(a: Answer, check: string, what: string): Check | null {
  if (a.status < 300 || a.status >= 400) return null;
  const to = a.headers.get("location");
  let origin = to ?? "";
  try {
    if (to) origin = new URL(to, "http://x").origin;
  } catch {
    origin = to ?? "";
  }
  return {
    check,
    status: "fail",
    summary: `${what} answered ${a.status}, a redirect${to ? ` to ${to}` : ""}`,
    fix: `call the address it redirects to${to ? ` (--url ${origin})` : ""}: HTTP clients may drop X-API-Key or a request body on a redirect`,
    data: { http_status: a.status, location: to },
  };
}

function healthChecks(a: Answer): { checks: Check[]; keygate: boolean } {
  const env = isObject(a.json) ? a.json : null;
  const d = env && isObject(env.data) ? env.data : null;
  if (d === null || typeof d.status !== "string") {
    const what = a.html
      ? "an HTML page"
      : a.json === undefined
        ? "something other than JSON"
        : "JSON without Keygate's health fields";
    return {
      keygate: false,
      checks: [
        {
          check: "health",
          status: "fail",
          summary: `${HEALTH_PATH} answered ${a.status} with ${what}: this is not Keygate's health check`,
          fix: "--url must be the address Keygate serves its API on (https://host[:port], without /api/...); a proxy in front may send /api/v1/external elsewhere",
          data: { http_status: a.status },
        },
      ],
    };
  }
  const status = d.status;
  const database = str(d.database) ?? "?";
  const redis = str(d.redis) ?? "?";
  const data = { status, database, redis, uptime_s: d.uptime_s };
  const parts = `database ${database}, redis ${redis === "off" ? "not configured" : redis}`;
  const error = env && isObject(env.error) ? (str(env.error.message) ?? "") : "";
  let health: Check;
  if (status === "ok" && a.status === 200) {
    health = { check: "health", status: "ok", summary: `${status} (${parts})`, data };
  } else if (status === "degraded") {
    health = {
      check: "health",
      status: "warn",
      summary: `degraded (${parts})`,
      fix: "the server's Redis is down: each instance counts rate limits on its own until it is back; its operator should check Redis (KEYGATE_REDIS_URL)",
      data,
    };
  } else {
    health = {
      check: "health",
      status: "fail",
      summary: `${status}, HTTP ${a.status} (${parts})`,
      fix: `${error ? `${error}: ` : ""}the server's operator must bring its database back; until then calls are refused`,
      data,
    };
  }
  const v = str(d.version);
  const version: Check =
    v === null
      ? {
          check: "version",
          status: "warn",
          summary: "the health check names no version",
          fix: "compare by hand: this keygate command is " + VERSION,
        }
      : {
          check: "version",
          status: "ok",
          summary: `Keygate ${v}${v === VERSION ? "" : ` (this keygate command is ${VERSION})`}`,
          data: { server: v, cli: VERSION },
        };
  return { keygate: true, checks: [health, version] };
}

function keyChecks(a: Answer, d: Json, base: string, skewMs: number | null): Check[] {
  const prefix = str(d.key_prefix) ?? "?";
  const checks: Check[] = [
    {
      check: "key",
      status: "ok",
      summary:
        `"${str(d.name) ?? "?"}" (${prefix}…) is accepted` +
        (d.environment === "test" ? "; a test key: it sees and changes test data only" : ""),
      data: { id: d.id, name: d.name, key_prefix: prefix, environment: d.environment ?? "live" },
    },
  ];
  const expiresAt = str(d.expires_at);
  const replacement = str(d.replaced_by_prefix);
  if (replacement !== null) {
    checks.push({
      check: "rolled",
      status: "warn",
      summary: `this key was rolled into ${replacement}… and works only until ${expiresAt ?? "its grace period ends"}`,
      fix: `switch to the replacement (${replacement}…) before then: it has the same scopes, allowed IPs and rate limit`,
      data: { replaced_by_prefix: replacement },
    });
  }
  checks.push(expiryCheck(expiresAt, d.id, a.receivedAt + (skewMs ?? 0)));
  checks.push(addressCheck(str(d.client_ip) ?? "?", d.allowed_ips, base));
  checks.push(scopeCheck(str(d.scopes) ?? "?", d.permissions));
  checks.push(ownerCheck(d.owner));
  checks.push(rateCheck(a.headers));
  return checks;
}

function report(url: string, checks: Check[], skipped?: string): Report {
  const count = (s: Status) => checks.filter((c) => c.status === s).length;
  const failed = count("fail");
  return {
    url,
    ok: failed === 0,
    passed: count("ok"),
    warnings: count("warn"),
    failed,
    checks,
    ...(skipped ? { skipped } : {}),
  };
}

/** Runs every check against the Keygate at `base` (see `keygateBase`) with `key`. */
export async function diagnose(base: string, key: string, probe: Probe): Promise<Report> {
  const checks: Check[] = [];
  const healthUrl = base + HEALTH_PATH;
  let health: Answer;
  try {
    health = await get(probe, healthUrl, {});
  } catch (err) {
    const u = unreachable(err, healthUrl, probe.timeoutMs);
    checks.push({
      check: "reach",
      status: "fail",
      summary: u.summary,
      fix: u.fix,
      data: { code: u.code },
    });
    return report(base, checks, "the other checks need a reachable Keygate");
  }
  const https = base.startsWith("https:");
  const ms = health.receivedAt - health.sentAt;
  checks.push({
    check: "reach",
    status: "ok",
    summary: `${base} answered in ${ms} ms${https ? " over TLS" : ""}`,
    data: { ms },
  });
  const host = new URL(base).hostname;
  if (!https && !isLoopbackHost(host)) {
    checks.push({
      check: "transport",
      status: "warn",
      summary: `plain http:// carries the key unencrypted to ${host}`,
      fix: "serve Keygate over TLS (a proxy in front, KEYGATE_PUBLIC_URL=https://...) and call it with https://",
    });
  }
  const moved = redirected(health, "health", HEALTH_PATH);
  if (moved) {
    checks.push(moved);
    return report(base, checks, "the other checks need Keygate's own address");
  }
  const h = healthChecks(health);
  checks.push(...h.checks);
  if (!h.keygate) return report(base, checks, "the other checks need a Keygate at --url");
  const skewMs = clockSkewMs(health.headers.get("date"), health.sentAt, health.receivedAt);
  checks.push(clockCheck(skewMs));

  const whoamiUrl = base + WHOAMI_PATH;
  let who: Answer;
  try {
    who = await get(probe, whoamiUrl, { "x-api-key": key });
  } catch (err) {
    const u = unreachable(err, whoamiUrl, probe.timeoutMs);
    checks.push({
      check: "key",
      status: "fail",
      summary: `whoami: ${u.summary}`,
      fix: u.fix,
      data: { code: u.code },
    });
    return report(base, checks, "the key's checks need an answer from whoami");
  }
  const whoMoved = redirected(who, "key", WHOAMI_PATH);
  if (whoMoved) {
    checks.push(whoMoved);
    return report(base, checks, "the key's checks need an answer from whoami");
  }
  const env = isObject(who.json) ? who.json : null;
  if (who.status === 200 && env && isObject(env.data)) {
    checks.push(...keyChecks(who, env.data, base, skewMs));
    return report(base, checks);
  }
  const error = env && isObject(env.error) ? env.error : null;
  const code = error ? str(error.code) : null;
  if (error && code) {
    checks.push(refusalCheck(code, str(error.message) ?? "", who.status, who.headers));
    // A refusal for the address or the budget still names the key: its other checks need it accepted.
    return report(base, checks, "the key's other checks need it accepted");
  }
  checks.push({
    check: "key",
    status: "fail",
    summary: `${WHOAMI_PATH} answered ${who.status} without Keygate's envelope`,
    fix: "a proxy in front of Keygate may answer for it: check that it passes /api/v1/external through",
    data: { http_status: who.status },
  });
  return report(base, checks, "the key's checks need an answer from whoami");
}

/** The report as a checklist: ✓ ✗ ! on a terminal, OK FAIL WARN otherwise; a fix under each problem. */
export function render(r: Report, tty: boolean): string {
  const mark: Record<Status, string> = tty
    ? { ok: "✓", warn: "!", fail: "✗" }
    : { ok: "OK  ", warn: "WARN", fail: "FAIL" };
  const under = tty ? "  → " : "      fix: ";
  const lines = [`keygate doctor ${printable(r.url)}`];
  for (const c of r.checks) {
    lines.push(`${mark[c.status]} ${LABEL[c.check] ?? c.check}: ${printable(c.summary)}`);
    if (c.fix) lines.push(`${under}${printable(c.fix)}`);
  }
  const total = r.checks.length;
  let last: string;
  if (r.failed === 0 && r.warnings === 0) last = `all ${total} checks passed`;
  else {
    const parts = [
      r.failed ? `${r.failed} failed` : "",
      r.warnings ? `${r.warnings} warning${r.warnings === 1 ? "" : "s"}` : "",
      `${r.passed} passed`,
    ].filter((p) => p !== "");
    last = parts.join(", ");
  }
  if (r.skipped) last += `; ${r.skipped}`;
  lines.push(last, "");
  return lines.join("\n");
}

async function readKey(values: Record<string, string | boolean | undefined>, io: Io) {
  const file = values["key-file"] as string | undefined;
  if (file !== undefined) {
    const text = readSecretFile("--key-file", file, "key", io);
    return cleanKey(text, `--key-file ${printable(file)}`);
  }
  if (io.stdin.isTTY) {
    return cleanKey(await readHidden("API key (not shown): ", io.stdin, process.stderr), "stdin");
  }
  return cleanKey(await readAll(io.stdin), "stdin");
}

export const doctor: Command = {
  name: "doctor",
  summary: "check an integration from its machine: reach, health, clock, key, scope, budget",
  synopsis: "--url <base> [--key-file <path>] [--json] [--timeout <seconds>]",
  help: `Diagnoses an integration from the machine it runs on, through Keygate's external
API alone (GET /api/v1/external/system/health and /whoami), so it works against
any Keygate without database access. It checks, one line each, with the fix
under every problem:

  reachable   the address answers (DNS, connection refused, timeout and TLS
              failures named); plain http:// to another machine is a warning
  health      status, database and Redis as the server reports them
  version     the server's Keygate version
  clock       this machine's clock against the server's Date header (a warning
              past ${SKEW_WARN_S} s: expiry is judged by the server's clock)
  key         accepted, or the refusal (API_KEY_REVOKED, API_KEY_EXPIRED,
              INVALID_API_KEY, INVALID_USER, ...) with the server's own message;
              a rolled key names its replacement
  expiry      when the key expires; a warning under ${EXPIRY_WARN_DAYS} days
  address     the address the server sees for this machine, and the key's
              allowed_ips (IP_NOT_ALLOWED when outside them)
  scope       which methods the key may use (read < write < delete)
  owner       who the key acts for and what that role reaches
  rate limit  the key's budget left this minute (RateLimit-* headers)

The key is read from stdin (asked without echo on a terminal) or from
--key-file, never from the command line, and is never printed. It is sent only
in X-API-Key to the one whoami call, which appears in the key's call log and
counts one request against its budget. Redirects are reported, not followed.

Options:
  --url <base>          the address integrations call, such as
                        https://keygate.example.com (a pasted /api/... is cut)
  --key-file <path>     read the key from this file instead of stdin
  --json                print the report as JSON: {url, ok, passed, warnings,
                        failed, checks: [{check, status, summary, fix, data}]}
  --timeout <seconds>   how long to wait for each answer; default 10

Exit codes: 0 every check passed (warnings allowed), 1 a check failed,
2 wrong usage (no --url, no key on stdin, a bad option).

Examples:
  keygate doctor --url https://keygate.example.com < key.txt
  printf '%s' "$KEYGATE_API_KEY" | keygate doctor --url https://keygate.example.com --json`,
  options: {
    url: { type: "string" },
    "key-file": { type: "string" },
    key: { type: "string" },
    json: { type: "boolean" },
    timeout: { type: "string" },
  },
  args: [],
  async run(values, _args, io) {
    if (values.key !== undefined) {
      throw new UsageError(
        "doctor takes no key on the command line (shell history and ps would show it): pipe it on stdin or pass --key-file <path>",
      );
    }
    const raw = values.url as string | undefined;
    if (raw === undefined)
      throw new UsageError("doctor needs --url <base>, such as https://keygate.example.com");
    const base = keygateBase(raw);
    let timeoutMs = 10_000;
    if (values.timeout !== undefined) {
      const t = Number(values.timeout);
      if (!/^\d+(?:\.\d+)?$/.test(values.timeout as string) || t <= 0 || t > 300) {
        throw new UsageError(
          `--timeout must be a number of seconds above 0 and at most 300 (got "${printable(values.timeout as string)}")`,
        );
      }
      timeoutMs = Math.round(t * 1000);
    }
    const key = await readKey(values, io);
    const r = await diagnose(base, key, { fetch: globalThis.fetch, now: Date.now, timeoutMs });
    const text = values.json
      ? `${JSON.stringify(r, null, 2)}\n`
      : render(r, process.stdout.isTTY === true);
    io.out(scrubKey(text, key));
    if (!r.ok) {
      throw new Failure(
        `doctor: ${r.failed} check${r.failed === 1 ? "" : "s"} failed at ${base}; the report says what to fix`,
      );
    }
  },
};
