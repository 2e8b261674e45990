import type { UserView } from "../auth/service.js";
import { redactUrl } from "../config.js";
import { AppError } from "../errors.js";
import { isEnvironment, isSigningMode } from "../keys/format.js";
import type { KeyInput, KeyView, Minted } from "../keys/service.js";
import { type Command, Failure, type Io, printable, UsageError } from "./command.js";

type Listed = KeyView & { owner: string | null };

function withOwners(keys: KeyView[], users: UserView[]): Listed[] {
  const names = new Map(users.map((u) => [u.id, u.username]));
  return keys.map((k) => ({ ...k, owner: names.get(k.owner_id) ?? null }));
}

const shown = (prefix: string) => `${prefix}…`;
const ownerName = (k: Listed) => (k.owner === null ? `#${k.owner_id} (deleted)` : k.owner);

/** Left-aligned columns, two spaces apart. */
function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

/** Field names of the key service's refusals, as the options that carry them. */
const FLAGS: Record<string, string> = {
  owner_id: "--owner",
  name: "--name",
  scopes: "--scopes",
  permissions: "--permissions",
  environment: "--environment",
  expires_at: "--expires-at",
  allowed_ips: "--allowed-ips",
  signing: "--signing",
  grace_period_hours: "--grace-hours",
  quota: "--quota",
  "quota.limit": "--quota",
  "quota.period": "--quota",
  "quota.refill_day": "--quota-refill-day",
};

/** A quota as the list shows it: 10000/day, 5000/month (from the 15th), or none. */
function quotaText(q: KeyView["quota"]): string {
  if (q === null) return "none";
  return q.period === "month" && q.refill_day !== null && q.refill_day !== 1
    ? `${q.limit}/month@${q.refill_day}`
    : `${q.limit}/${q.period}`;
}

/** `--quota <calls>/<day|month>` and `--quota-refill-day <1-31>`, as the key service takes them. */
export function quotaOption(
  quota: string | undefined,
  refillDay: string | undefined,
): KeyInput["quota"] | undefined {
  if (quota === undefined) {
    if (refillDay !== undefined)
      throw new UsageError("--quota-refill-day goes with --quota <calls>/month");
    return undefined;
  }
  const m = /^(\d{1,10})\/(day|month)$/.exec(quota.trim());
  if (m === null)
    throw new UsageError(
      `--quota must be <calls>/day or <calls>/month, e.g. 10000/day (got "${printable(quota)}")`,
    );
  if (refillDay !== undefined && !/^\d{1,2}$/.test(refillDay))
    throw new UsageError(
      `--quota-refill-day must be a day of the month from 1 to 31 (got "${printable(refillDay)}")`,
    );
  return {
    limit: Number(m[1]),
    period: m[2],
    ...(refillDay === undefined ? {} : { refill_day: Number(refillDay) }),
  };
}

/** A key service refusal in the command line's words: the option and the value at fault. */
function refusal(err: AppError, ips: string[], perms: string[] = []): UsageError {
  if (err.code !== "VALIDATION_ERROR" || !err.details) return new UsageError(err.message);
  const parts = err.details.map(({ field, message }) => {
    const perm = /^permissions\[(\d+)\]$/.exec(field);
    if (perm) return `--permissions "${printable(perms[Number(perm[1])] ?? "")}" ${message}`;
    const ip = /^allowed_ips\[(\d+)\]$/.exec(field);
    if (ip) {
      const value = ips[Number(ip[1])];
      return value === undefined
        ? `--allowed-ips ${message}`
        : `--allowed-ips "${value}": ${message}`;
    }
    return `${FLAGS[field] ?? field} ${message}`;
  });
  return new UsageError(parts.join("; "));
}

export const keysList: Command = {
  name: "keys list",
  summary:
    "list API keys: id, name, prefix, owner, scopes, signing, status, last use, last refusal, quota",
  synopsis: "[--owner <username>] [--environment live|test] [--json]",
  help: `Lists every API key, newest first. Never shows a key or its hash: only the
first 12 characters (the prefix), which the console and the call log show too.
STATUS is the first that applies: revoked, owner_deleted, owner_disabled (a key
acts for its owner, so every call is refused INVALID_USER), expired, else active.
LAST USED is the last call the key checks accepted, as running servers have written
it (every 10 s); a call they refused is an attempt, not a use: LAST REFUSED shows
the latest one and its error code (its address is in --json).
SCOPES is the key's preset (read, write, delete) or, for a key with its own set,
its permissions; a test key's prefix starts pk_test_. SIGNING is off, optional
(signed calls must verify, unsigned ones pass) or required (every call is signed).
QUOTA is the key's cap of admitted calls: 10000/day, 5000/month, 5000/month@15
(refilled on the 15th, UTC), or none.

Options:
  --owner <username>         only the keys this user owns
  --environment live|test    only the keys of one environment (default both)
  --json                     one JSON array (the API's key fields, plus "owner")

Example:
  keygate keys list --owner billing-bot`,
  options: {
    owner: { type: "string" },
    environment: { type: "string" },
    json: { type: "boolean" },
  },
  args: [],
  async run(values, _args, io) {
    const environment = values.environment as string | undefined;
    if (environment !== undefined && !isEnvironment(environment))
      throw new UsageError(
        `--environment must be "live" or "test" (got "${printable(environment)}")`,
      );
    const { withKeygate } = await import("./session.js");
    await withKeygate(io.env, async (s) => {
      const users = await s.kg.auth.listUsers(s.op);
      let keys = withOwners(await s.kg.keys.list(s.op, environment ?? null), users);
      const owner = values.owner as string | undefined;
      if (owner !== undefined) {
        const u = await s.user(owner);
        keys = keys.filter((k) => k.owner_id === u.id);
      }
      if (values.json) {
        io.out(`${JSON.stringify(keys, null, 2)}\n`);
        return;
      }
      if (keys.length === 0) {
        io.out(owner === undefined ? "no keys\n" : `no keys owned by "${owner}"\n`);
        return;
      }
      const rows = keys.map((k) => [
        String(k.id),
        printable(k.name),
        shown(k.key_prefix),
        ownerName(k),
        k.scopes === "custom" ? k.permissions.join(",") : k.scopes,
        k.signing,
        k.status,
        k.last_used_at ?? "never",
        k.last_refused_at === null ? "never" : `${k.last_refused_at} ${k.last_refused_code}`,
        quotaText(k.quota),
      ]);
      const head = [
        ...["ID", "NAME", "PREFIX", "OWNER", "SCOPES", "SIGNING", "STATUS"],
        "LAST USED",
      ];
      io.out(`${table([...head, "LAST REFUSED", "QUOTA"], rows)}\n`);
    });
  },
};

export const keysMint: Command = {
  name: "keys mint",
  summary: "mint an API key for a user and print it, once",
  synopsis:
    "--owner <username> --name <name> [--permissions <list> | --scopes read|write|delete] [--environment live|test] [--expires-at <when>] [--allowed-ips <ip,cidr,...>] [--signing off|optional|required] [--quota <calls>/day|month [--quota-refill-day <1-31>]] [--json]",
  help: `Mints a key through the same rules as the API and the console, and prints it.
The key is shown this once: Keygate keeps only its hash. A key that signs gets a
signing secret too (pks_live_ or pks_test_ + 64 hex), also shown this once: Keygate
keeps it sealed under the master key (KEYGATE_MASTER_KEY), which minting one needs.

Options:
  --owner <username>      the user the key acts for (required)
  --name <name>           what the key is for, 1-100 characters (required)
  --permissions <list>    comma-separated resource:action permissions, e.g.
                          subscribers:read,transactions:write (resources: subscribers,
                          transactions, usage, services, nas, stats, or * for all;
                          actions: read, write, delete; write implies read, delete
                          implies write)
  --scopes <scope>        a preset instead: read (*:read), write (*:write) or
                          delete (*:delete); default read
  --environment <env>     live (pk_live_, live data; the default) or test (pk_test_,
                          test data only)
  --expires-at <when>     YYYY-MM-DD (valid through that day, UTC) or an ISO-8601
                          timestamp; default never
  --allowed-ips <list>    comma-separated addresses or CIDR ranges the key may be
                          used from; default any address
  --signing <mode>        RFC 9421 request signing: off (the key alone; the default),
                          optional (signed calls must verify, unsigned ones pass) or
                          required (every call is signed with the signing secret)
  --quota <calls>/<period>
                          a hard cap of admitted calls per day or month (UTC), e.g.
                          10000/day or 250000/month; past it calls are refused
                          429 QUOTA_EXCEEDED until it refills; default none
  --quota-refill-day <d>  the day of the month a monthly quota refills, 1-31
                          (past a month's end, its last day); default 1
  --json                  print {"key", "signing_secret" (when it signs), "data",
                          "note"} as JSON

Example:
  keygate keys mint --owner admin --name billing --scopes write --allowed-ips 203.0.113.7
  keygate keys mint --owner admin --name payments --scopes write --signing required
  keygate keys mint --owner admin --name partner --quota 250000/month --quota-refill-day 15
  keygate keys mint --owner alice --name sms --permissions subscribers:read,transactions:write --environment test`,
  options: {
    owner: { type: "string" },
    name: { type: "string" },
    scopes: { type: "string" },
    permissions: { type: "string" },
    environment: { type: "string" },
    "expires-at": { type: "string" },
    "allowed-ips": { type: "string" },
    signing: { type: "string" },
    quota: { type: "string" },
    "quota-refill-day": { type: "string" },
    json: { type: "boolean" },
  },
  args: [],
  async run(values, _args, io) {
    const quota = quotaOption(
      values.quota as string | undefined,
      values["quota-refill-day"] as string | undefined,
    );
    const owner = values.owner as string | undefined;
    const name = values.name as string | undefined;
    if (owner === undefined) throw new UsageError("keys mint needs --owner <username>");
    if (name === undefined) throw new UsageError("keys mint needs --name <name>");
    const signing = values.signing as string | undefined;
    if (signing !== undefined && !isSigningMode(signing))
      throw new UsageError(
        `--signing must be "off", "optional" or "required" (got "${printable(signing)}")`,
      );
    const ips =
      values["allowed-ips"] === undefined
        ? undefined
        : (values["allowed-ips"] as string)
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== "");
    const perms =
      values.permissions === undefined
        ? undefined
        : (values.permissions as string)
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== "");
    const { withKeygate } = await import("./session.js");
    await withKeygate(
      io.env,
      async (s) => {
        const user = await s.user(owner);
        if (user.disabled)
          throw new UsageError(`user "${owner}" is disabled; its keys would be refused`);
        if (signing !== undefined && signing !== "off" && s.config.masterKey === null)
          throw new UsageError(
            `--signing ${signing} needs the master key in this command's environment: set KEYGATE_MASTER_KEY (or KEYGATE_MASTER_KEY_FILE) to the running server's value; without one yet, make it with \`openssl rand -hex 32\` and give it to the server too (restart it)`,
          );
        const input: KeyInput = { owner_id: user.id, name };
        if (values.scopes !== undefined) input.scopes = values.scopes as string;
        if (perms !== undefined) input.permissions = perms;
        if (values.environment !== undefined) input.environment = values.environment as string;
        if (values["expires-at"] !== undefined) input.expires_at = values["expires-at"] as string;
        if (ips !== undefined) input.allowed_ips = ips;
        if (signing !== undefined) input.signing = signing;
        if (quota !== undefined) input.quota = quota;
        let minted: Minted;
        try {
          minted = await s.kg.keys.create(s.op, input);
        } catch (err) {
          throw err instanceof AppError ? refusal(err, ips ?? [], perms ?? []) : err;
        }
        const data = { ...minted.data, owner: user.username };
        printMinted(io, minted, data, Boolean(values.json), [
          `minted key ${data.id} "${printable(data.name)}" for "${user.username}"`,
          `  permissions ${data.permissions.join(", ")} (scopes ${data.scopes})`,
          `  ${data.environment === "test" ? "a test key: works on test data only" : "a live key: works on live data"}; allowed IPs ${data.allowed_ips?.join(", ") ?? "any"}; expires ${data.expires_at ?? "never"}`,
          ...signingLine(data.signing),
          ...(data.quota === null
            ? []
            : [
                `  quota ${quotaText(data.quota)}: at most ${data.quota.limit} admitted calls per ${data.quota.period} (UTC), then 429 QUOTA_EXCEEDED until it refills`,
              ]),
        ]);
      },
      { needsRedis: true },
    );
  },
};

/** What a key's signing mode asks of its calls, for the lines above a minted key. */
function signingLine(mode: KeyView["signing"]): string[] {
  if (mode === "off") return [];
  return [
    mode === "required"
      ? "  signing required: every call must carry an RFC 9421 signature made with the signing secret"
      : "  signing optional: a signed call must verify; unsigned calls are accepted",
  ];
}

/**
 * Prints a key (and its signing secret) the one time it exists in the clear: after the lines
 * that say what it is, with the warning that it is not shown again; or as JSON.
 */
function printMinted(
  io: Io,
  minted: Minted,
  data: KeyView & { owner: string | null },
  json: boolean,
  about: string[],
): void {
  const secret = minted.signingSecret;
  const note =
    secret === undefined
      ? "This key is shown only once: store it now. Keygate keeps only its hash."
      : "This key and its signing secret are shown only once: store both now. Keygate keeps only the key's hash, and the secret sealed under the master key.";
  if (json) {
    const out = {
      key: minted.key,
      ...(secret === undefined ? {} : { signing_secret: secret }),
      data,
      note,
    };
    io.out(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const shownOnce =
    secret === undefined
      ? [minted.key]
      : [`key:            ${minted.key}`, `signing secret: ${secret}`];
  io.out([...about, "", ...shownOnce, "", note, ""].join("\n"));
}

export const keysRoll: Command = {
  name: "keys roll",
  summary: "replace an API key and print the new one, once; the old one lasts a grace period",
  synopsis: "<id> [--grace-hours <hours>] [--json]",
  help: `Mints a replacement for the key with this id (see keygate keys list): the same
name, owner, permissions, environment, allowed IPs, rate limit, expiry and signing
mode, through the same service as the API. The new key is printed this once; a key
that signs gets a new signing secret too, printed beside it (the old secret goes
with the old key). The old key keeps working for the grace period, so the
integration can switch over, then is refused API_KEY_EXPIRED; with --grace-hours 0
it is revoked at once.

Options:
  --grace-hours <hours>   how long the old key keeps working, 0 to 168 (default 24)
  --json                  print {"key", "signing_secret" (when it signs), "data",
                          "note"} as JSON

Example:
  keygate keys roll 42
  keygate keys roll 42 --grace-hours 0`,
  options: {
    "grace-hours": { type: "string" },
    json: { type: "boolean" },
  },
  args: ["id"],
  async run(values, args, io) {
    const id = keyId(args[0] as string);
    const graceText = values["grace-hours"] as string | undefined;
    if (graceText !== undefined && !/^\d{1,3}$/.test(graceText))
      throw new UsageError(
        `--grace-hours must be a whole number from 0 to 168 (got "${printable(graceText)}")`,
      );
    const graceHours = graceText === undefined ? 24 : Number(graceText);
    const { withKeygate } = await import("./session.js");
    await withKeygate(
      io.env,
      async (s) => {
        let rolled: Minted;
        try {
          rolled = await s.kg.keys.roll(s.op, id, graceHours);
        } catch (err) {
          throw err instanceof AppError ? refusal(err, []) : err;
        }
        const old = await s.kg.keys.get(s.op, id);
        const users = await s.kg.auth.listUsers(s.op);
        const [data] = withOwners([rolled.data], users) as [Listed];
        printMinted(io, rolled, data, Boolean(values.json), [
          `rolled key ${id} (${shown(old.key_prefix)}) into key ${data.id} "${printable(data.name)}" for "${ownerName(data)}"`,
          graceHours === 0
            ? `  the old key is revoked`
            : `  the old key keeps working until ${old.expires_at ?? "never"}, then is refused`,
          ...signingLine(data.signing),
        ]);
        // The revoked old key must reach running servers; with --json only a failure is said.
        if (graceHours === 0) {
          const quiet = values.json ? { ...io, out: () => {} } : io;
          reportReach(s.kg.cluster?.deliveries ?? null, s.cacheTtlS, s.config, quiet);
        }
      },
      { needsRedis: true },
    );
  },
};

/** A key id as typed, or a usage error. */
function keyId(raw: string): number {
  if (!/^[1-9]\d{0,15}$/.test(raw)) {
    throw new UsageError(`key id must be a whole number such as 42 (got "${printable(raw)}")`);
  }
  return Number(raw);
}

export const keysRevoke: Command = {
  name: "keys revoke",
  summary: "revoke an API key at once",
  synopsis: "<id>",
  help: `Revokes the key with this id (see keygate keys list) through the same service
as the API: it is refused with API_KEY_REVOKED from then on.

Running servers cache verified keys. With KEYGATE_REDIS_URL set (as on the servers),
the revocation is sent through Redis to every running instance, which refuses the
key on its next request. Without Redis, a running server that verified the key
recently may accept it until its cache entry expires (30 s); the command says so.
Revoking a revoked key changes nothing and sends the eviction again.

Example:
  keygate keys revoke 42`,
  options: {},
  args: ["id"],
  async run(_values, args, io) {
    const id = keyId(args[0] as string);
    const { withKeygate } = await import("./session.js");
    await withKeygate(
      io.env,
      async (s) => {
        const before = await s.kg.keys.get(s.op, id);
        const after = await s.kg.keys.revoke(s.op, id);
        const what = `key ${id} "${printable(after.name)}" (${shown(after.key_prefix)})`;
        io.out(
          before.status === "revoked"
            ? `${what} was already revoked at ${before.revoked_at}\n`
            : `revoked ${what}\n`,
        );
        reportReach(s.kg.cluster?.deliveries ?? null, s.cacheTtlS, s.config, io);
      },
      { needsRedis: true },
    );
  },
};

/** Says whether the revocation reached running servers, or how long they may still accept it. */
function reportReach(
  deliveries: { sent: number; failed: number; received: number } | null,
  ttlS: number,
  config: { redisUrl: string | null },
  io: Io,
): void {
  if (deliveries === null) {
    io.out(
      `without Redis (KEYGATE_REDIS_URL) this cannot reach running servers at once: one that ` +
        `verified the key in the last ${ttlS} s may accept it for up to ${ttlS} s more (its key cache lifetime)\n`,
    );
    return;
  }
  if (deliveries.failed > 0 || deliveries.sent === 0) {
    throw new Failure(
      `the key is revoked in the database, but Redis at ${redactUrl(config.redisUrl ?? "")} did not ` +
        `take the eviction: running servers may accept the key for up to ${ttlS} s more; ` +
        `run the command again to resend it`,
    );
  }
  io.out(
    `eviction sent through Redis to ${deliveries.received} running instance(s); they refuse the key from now on\n`,
  );
}
