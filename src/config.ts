import { readFileSync } from "node:fs";
import { unreadableReason } from "./files.js";
import { passwordProblem } from "./auth/passwords.js";
import { parseAllowList } from "./keys/ip.js";
import { parseMasterKey } from "./credentials/secrets.js";
import { parseReporterKeys, readReporterKeyFile, type ReporterKey } from "./alerts/reporters.js";

/** Every setting Keygate reads, validated once. Nothing else reads `process.env`. */
export type Config = Readonly<{
  host: string;
  port: number;
  databaseUrl: string;
  redisUrl: string | null;
  jwtSecret: string | null;
  adminUsername: string;
  adminPassword: string | null;
  keyRateLimit: number;
  ipRateLimit: number;
  failedKeyLimit: number;
  logRetentionDays: number;
  /** false, true (trust every hop), or the addresses/ranges of the proxies to trust. */
  trustProxy: boolean | string[];
  selfServiceKeys: boolean;
  logLevel: string;
  /** Where browsers reach Keygate (`KEYGATE_PUBLIC_URL`), without a trailing slash; null when unset. */
  publicUrl: string | null;
  /** Answers of one event-loop turn written together at its end (`KEYGATE_COALESCE_WRITES`). */
  coalesceWrites: boolean;
  /** SQLite's `synchronous` in WAL mode: `normal` or `full` (sync every commit). */
  sqliteSynchronous: "normal" | "full";
  /** Who must turn on two-factor sign-in before minting, changing, rolling or revoking keys. */
  requireTwoFactor: "off" | "admins" | "all";
  /**
   * The key-encryption key signing secrets are sealed under (`KEYGATE_MASTER_KEY` or the file
   * `KEYGATE_MASTER_KEY_FILE` names); null when neither is set.
   */
  masterKey: Buffer | null;
  /**
   * Earlier master keys (`KEYGATE_MASTER_KEY_PREVIOUS`, comma-separated), kept during a
   * rotation: values sealed under them still open, nothing new is sealed under them.
   */
  masterKeyPrevious: Buffer[];
  /** Lifetime of an access token from the token exchange, in seconds (`KEYGATE_TOKEN_TTL_S`). */
  tokenTtlS: number;
  /** The bearer token that reads `GET /metrics` (`KEYGATE_METRICS_TOKEN`); null when unset. */
  metricsToken: string | null;
  /**
   * A listener of its own that serves only `/metrics`, without a token
   * (`KEYGATE_METRICS_ADDRESS`, host:port); null when unset.
   */
  metricsAddress: { host: string; port: number } | null;
  /** Deliver webhooks to private, loopback and link-local addresses (`KEYGATE_WEBHOOK_ALLOW_PRIVATE`). */
  webhookAllowPrivate: boolean;
  /**
   * The public keys leak reports are verified against (`KEYGATE_LEAK_REPORTER_KEYS`: the
   * scanner's key document inline, or the path of a file holding it); null when unset, and
   * then `POST /api/v1/external/leaks` takes no reports.
   */
  leakReporterKeys: readonly ReporterKey[] | null;
  /** The file `KEYGATE_LEAK_REPORTER_KEYS` names, read again for a key it did not list; null inline. */
  leakReporterKeysFile: string | null;
  /** What a reported live key gets (`KEYGATE_LEAK_ACTION`): revoked at once, or only flagged. */
  leakAction: "revoke" | "flag";
  /** Requests per minute per client IP to the leak-report and revoke-exposed routes. */
  leakRateLimit: number;
}>;

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const read = (name: string) => {
    const v = env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return def;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new ConfigError(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
    }
    return Number(raw);
  };
  const bool = (name: string, def: boolean): boolean => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined) return def;
    if (["true", "1", "yes", "on"].includes(raw)) return true;
    if (["false", "0", "no", "off"].includes(raw)) return false;
    throw new ConfigError(`${name} must be true or false (got "${raw}")`);
  };

  const oneOf = <T extends string>(name: string, values: readonly T[], def: T): T => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined) return def;
    if (!(values as readonly string[]).includes(raw)) {
      throw new ConfigError(`${name} must be one of ${values.join(", ")} (got "${raw}")`);
    }
    return raw as T;
  };

  const databaseUrl = read("KEYGATE_DATABASE_URL") ?? "sqlite:./data/keygate.db";
  if (!/^(sqlite:.+|postgres(ql)?:\/\/.+)$/.test(databaseUrl)) {
    throw new ConfigError(
      `KEYGATE_DATABASE_URL must be sqlite:PATH, sqlite::memory: or postgres://… (got "${redactUrl(databaseUrl)}")`,
    );
  }
  const redisUrl = read("KEYGATE_REDIS_URL") ?? null;
  if (redisUrl !== null && !/^rediss?:\/\/.+/.test(redisUrl)) {
    throw new ConfigError(
      `KEYGATE_REDIS_URL must start with redis:// or rediss:// (got "${redactUrl(redisUrl)}")`,
    );
  }
  const jwtSecret = read("KEYGATE_JWT_SECRET") ?? null;
  if (jwtSecret !== null && jwtSecret.length < 32) {
    throw new ConfigError("KEYGATE_JWT_SECRET must be at least 32 characters long");
  }
  const adminUsername = read("KEYGATE_ADMIN_USERNAME") ?? "admin";
  if (!/^[A-Za-z0-9@._-]{3,64}$/.test(adminUsername)) {
    throw new ConfigError("KEYGATE_ADMIN_USERNAME must be 3-64 of A-Z a-z 0-9 @ . _ -");
  }
  const adminPassword = env.KEYGATE_ADMIN_PASSWORD || null;
  const passwordWrong = adminPassword === null ? null : passwordProblem(adminPassword);
  if (passwordWrong) throw new ConfigError(`KEYGATE_ADMIN_PASSWORD ${passwordWrong}`);
  const host = read("KEYGATE_HOST") ?? "127.0.0.1";
  const logLevel = read("KEYGATE_LOG_LEVEL") ?? "info";
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(logLevel)) {
    throw new ConfigError(
      `KEYGATE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent`,
    );
  }

  const current = masterKey(read("KEYGATE_MASTER_KEY"), read("KEYGATE_MASTER_KEY_FILE"));
  const previous = previousMasterKeys(read("KEYGATE_MASTER_KEY_PREVIOUS"), current);

  return Object.freeze({
    host,
    port: int("KEYGATE_PORT", 8080, 0, 65535),
    databaseUrl,
    redisUrl,
    jwtSecret,
    adminUsername,
    adminPassword,
    keyRateLimit: int("KEYGATE_KEY_RATE_LIMIT", 600, 1, 10_000_000),
    ipRateLimit: int("KEYGATE_IP_RATE_LIMIT", 3000, 0, 100_000_000),
    failedKeyLimit: int("KEYGATE_FAILED_KEY_LIMIT", 100, 0, 10_000_000),
    logRetentionDays: int("KEYGATE_LOG_RETENTION_DAYS", 30, 1, 3650),
    trustProxy: trustProxy(read("KEYGATE_TRUST_PROXY")),
    selfServiceKeys: bool("KEYGATE_SELF_SERVICE_KEYS", false),
    logLevel,
    publicUrl: publicUrl(read("KEYGATE_PUBLIC_URL")),
    coalesceWrites: bool("KEYGATE_COALESCE_WRITES", true),
    sqliteSynchronous: oneOf("KEYGATE_SQLITE_SYNCHRONOUS", ["normal", "full"], "normal"),
    requireTwoFactor: requireTwoFactor(read("KEYGATE_REQUIRE_2FA")),
    masterKey: current,
    masterKeyPrevious: previous,
    tokenTtlS: int("KEYGATE_TOKEN_TTL_S", 3600, 60, 86_400),
    metricsToken: metricsToken(read("KEYGATE_METRICS_TOKEN")),
    metricsAddress: metricsAddress(
      read("KEYGATE_METRICS_ADDRESS"),
      int("KEYGATE_PORT", 8080, 0, 65535),
    ),
    webhookAllowPrivate: bool("KEYGATE_WEBHOOK_ALLOW_PRIVATE", false),
    leakReporterKeys: reporterKeys(read("KEYGATE_LEAK_REPORTER_KEYS")),
    leakReporterKeysFile: reporterKeysFile(read("KEYGATE_LEAK_REPORTER_KEYS")),
    leakAction: oneOf("KEYGATE_LEAK_ACTION", ["revoke", "flag"], "revoke"),
    leakRateLimit: int("KEYGATE_LEAK_RATE_LIMIT", 60, 1, 1_000_000),
  });
}

const MASTER_KEY_FORM =
  "32 bytes as 64 hex characters or base64 (make one with: openssl rand -hex 32)";

function masterKey(value: string | undefined, file: string | undefined): Buffer | null {
  if (value !== undefined && file !== undefined)
    throw new ConfigError("set KEYGATE_MASTER_KEY or KEYGATE_MASTER_KEY_FILE, not both");
  if (value !== undefined) {
    const key = parseMasterKey(value);
    if (key === null) throw new ConfigError(`KEYGATE_MASTER_KEY must be ${MASTER_KEY_FORM}`);
    return key;
  }
  if (file === undefined) return null;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(
      `KEYGATE_MASTER_KEY_FILE ${file} cannot be read: ${unreadableReason(err)}`,
    );
  }
  const key = parseMasterKey(text);
  if (key === null)
    throw new ConfigError(`KEYGATE_MASTER_KEY_FILE ${file} must hold ${MASTER_KEY_FORM}`);
  return key;
}

/**
 * The keys a rotation retires, as a comma-separated list in the master key's form. They only
 * open what was sealed before, so they make sense only beside a current key; the current key
 * itself, or one listed twice, counts once.
 */
function previousMasterKeys(value: string | undefined, current: Buffer | null): Buffer[] {
  if (value === undefined) return [];
  if (current === null) {
    throw new ConfigError(
      "KEYGATE_MASTER_KEY_PREVIOUS is set without KEYGATE_MASTER_KEY: set the new master key as KEYGATE_MASTER_KEY (or KEYGATE_MASTER_KEY_FILE) and keep only the old one(s) in KEYGATE_MASTER_KEY_PREVIOUS",
    );
  }
  const entries = value.split(",").map((s) => s.trim());
  const keys: Buffer[] = [];
  entries.forEach((entry, i) => {
    const key = parseMasterKey(entry);
    if (key === null) {
      const which = entries.length === 1 ? "" : ` (entry ${i + 1} of ${entries.length} is not)`;
      throw new ConfigError(
        `KEYGATE_MASTER_KEY_PREVIOUS must hold the earlier master key(s), comma-separated, each 32 bytes as 64 hex characters or base64${which}`,
      );
    }
    if (!key.equals(current) && !keys.some((k) => k.equals(key))) keys.push(key);
  });
  return keys;
}

/** The scanner's key document given inline (JSON), or the path of a file holding it. */
function reporterKeys(raw: string | undefined): readonly ReporterKey[] | null {
  if (raw === undefined) return null;
  const file = reporterKeysFile(raw);
  const parsed = file === null ? parseReporterKeys(raw) : readReporterKeyFile(file);
  if (!parsed.ok) throw new ConfigError(`KEYGATE_LEAK_REPORTER_KEYS ${parsed.problem}`);
  return Object.freeze(parsed.keys);
}

/** The path `KEYGATE_LEAK_REPORTER_KEYS` names, or null when it holds the document itself. */
function reporterKeysFile(raw: string | undefined): string | null {
  return raw === undefined || raw.startsWith("{") || raw.startsWith("[") ? null : raw;
}

/** At least 24 visible ASCII characters: it travels in an Authorization header. */
function metricsToken(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  if (raw.length < 24 || !/^[\x21-\x7e]+$/.test(raw)) {
    throw new ConfigError(
      `KEYGATE_METRICS_TOKEN must be at least 24 characters of visible ASCII, without spaces (got ${raw.length} characters; make one with: openssl rand -hex 24)`,
    );
  }
  return raw;
}

/** `host:port` (an IPv6 host in brackets), on another port than Keygate's own. */
function metricsAddress(
  raw: string | undefined,
  mainPort: number,
): { host: string; port: number } | null {
  if (raw === undefined) return null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[3]) : -1;
  if (m === null || port > 65535) {
    throw new ConfigError(
      `KEYGATE_METRICS_ADDRESS must be host:port, such as 127.0.0.1:9464 or [::1]:9464 (got "${raw}")`,
    );
  }
  if (port !== 0 && port === mainPort) {
    throw new ConfigError(
      `KEYGATE_METRICS_ADDRESS must use another port than KEYGATE_PORT (${mainPort}): it is a listener of its own, serving only /metrics`,
    );
  }
  return { host: (m[1] ?? m[2]) as string, port };
}

function requireTwoFactor(raw: string | undefined): "off" | "admins" | "all" {
  const value = raw?.toLowerCase() ?? "off";
  if (value === "off" || value === "admins" || value === "all") return value;
  throw new ConfigError(
    `KEYGATE_REQUIRE_2FA must be off, admins or all (got "${raw}"): who must turn on two-factor sign-in before managing keys`,
  );
}

/** An absolute http(s) URL with no credentials, query or fragment; its trailing slash is dropped. */
function publicUrl(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {
    // refused below
  }
  if (
    url === null ||
    !["http:", "https:"].includes(url.protocol) ||
    url.username !== "" ||
    url.password !== "" ||
    raw.includes("?") ||
    raw.includes("#")
  ) {
    throw new ConfigError(
      `KEYGATE_PUBLIC_URL must be the http:// or https:// address browsers reach Keygate at, such as https://keygate.example.com, with no user, query or fragment (got "${redactUrl(raw)}")`,
    );
  }
  return url.href.endsWith("/") ? url.href.slice(0, -1) : url.href;
}

function trustProxy(raw: string | undefined): boolean | string[] {
  if (raw === undefined) return false;
  const lower = raw.toLowerCase();
  if (["true", "1", "yes", "on"].includes(lower)) return true;
  if (["false", "0", "no", "off"].includes(lower)) return false;
  const list = raw.split(",").map((s) => s.trim());
  const parsed = parseAllowList(list);
  if (!parsed.ok || parsed.list.entries.length === 0) {
    throw new ConfigError(
      `KEYGATE_TRUST_PROXY must be true, false, or a comma-separated list of proxy addresses or CIDR ranges (got "${raw}")`,
    );
  }
  return [...parsed.list.entries];
}

/** Hides a password in a connection URL so it can be printed. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}
