import type { Kysely } from "kysely";
import { loadConfig } from "../config.js";
import {
  isPlain,
  MasterKeyring,
  sealedUnder,
  secretBinding,
  tokenKeyBinding,
} from "../credentials/secrets.js";
import { isPlainWebhookSecret, webhookSecretBinding } from "../events/webhooks.js";
import type { DB } from "../store/schema.js";
import { type Command, Failure } from "./command.js";

type Unreadable = { under: string; why: string };

/** Whether a sealed value opens with the ring; the reason it does not, otherwise. */
function tryOpen(ring: MasterKeyring, sealed: string, boundTo: string): Unreadable | null {
  try {
    ring.open(sealed, boundTo);
    return null;
  } catch (err) {
    return { under: sealedUnder(sealed) ?? "unknown", why: (err as Error).message };
  }
}

/** What a rotation would find: the values it cannot open, before anything is changed. */
type Survey = {
  secrets: { id: number; prefix: string; revoked: boolean; problem: Unreadable }[];
  tokenKeys: { kid: string; problem: Unreadable }[];
};

async function survey(db: Kysely<DB>, ring: MasterKeyring): Promise<Survey> {
  const keys = await db
    .selectFrom("api_keys")
    .select(["id", "key_hash", "key_prefix", "signing_secret", "revoked_at"])
    .where("signing_secret", "is not", null)
    .orderBy("id")
    .execute();
  const tokenKeys = await db
    .selectFrom("oauth_signing_keys")
    .select(["kid", "private_jwk"])
    .orderBy("created_at")
    .execute();
  const out: Survey = { secrets: [], tokenKeys: [] };
  for (const k of keys) {
    const sealed = k.signing_secret as string;
    if (ring.isCurrent(sealed)) continue;
    const problem = tryOpen(ring, sealed, secretBinding(k.key_hash));
    if (problem)
      out.secrets.push({
        id: Number(k.id),
        prefix: k.key_prefix,
        revoked: k.revoked_at !== null,
        problem,
      });
  }
  for (const t of tokenKeys) {
    if (isPlain(t.private_jwk) || ring.isCurrent(t.private_jwk)) continue;
    const problem = tryOpen(ring, t.private_jwk, tokenKeyBinding(t.kid));
    if (problem) out.tokenKeys.push({ kid: t.kid, problem });
  }
  return out;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const under = (items: { problem: Unreadable }[]) =>
  [...new Set(items.map((i) => i.problem.under))].join(", ");

/**
 * Reseals every signing secret under the current key, in one transaction. A row changed
 * meanwhile (a key rolled or its signing turned off by a running server) is left as that
 * change wrote it: only a row still holding what was read is rewritten.
 */
async function resealSecrets(db: Kysely<DB>, ring: MasterKeyring): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom("api_keys")
      .select(["id", "key_hash", "signing_secret", "revoked_at"])
      .where("signing_secret", "is not", null)
      .execute();
    let changed = 0;
    for (const r of rows) {
      const sealed = r.signing_secret as string;
      if (ring.isCurrent(sealed)) continue;
      // A revoked key's secret that does not open verifies nothing again: it is left as it is.
      if (r.revoked_at !== null && tryOpen(ring, sealed, secretBinding(r.key_hash))) continue;
      const next = ring.reseal(sealed, secretBinding(r.key_hash));
      const res = await trx
        .updateTable("api_keys")
        .set({ signing_secret: next })
        .where("id", "=", r.id)
        .where("signing_secret", "=", sealed)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) changed++;
    }
    return changed;
  });
}

/**
 * Reseals (or seals, when kept as given) every webhook endpoint's secret under the current
 * key, in one transaction. A secret no configured key opens is left as it is and counted: its
 * endpoint needs a new one (rotate-secret); an unreadable previous secret is dropped (it only
 * signs beside the current one, for a day).
 */
async function resealWebhookSecrets(
  db: Kysely<DB>,
  ring: MasterKeyring,
): Promise<{ resealed: number; unreadable: number[] }> {
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom("webhook_endpoints")
      .select(["id", "secret", "previous_secret"])
      .execute();
    let resealed = 0;
    const unreadable: number[] = [];
    const next = (stored: string, id: number): string | null => {
      if (ring.isCurrent(stored)) return stored;
      const binding = webhookSecretBinding(id);
      if (isPlainWebhookSecret(stored)) return ring.seal(stored, binding);
      return tryOpen(ring, stored, binding) ? null : ring.reseal(stored, binding);
    };
    for (const r of rows) {
      const secret = next(r.secret, r.id);
      if (secret === null) unreadable.push(r.id);
      const previous = r.previous_secret === null ? null : next(r.previous_secret, r.id);
      const set = {
        ...(secret !== null && secret !== r.secret ? { secret } : {}),
        ...(previous !== r.previous_secret ? { previous_secret: previous } : {}),
      };
      if (Object.keys(set).length === 0) continue;
      const res = await trx
        .updateTable("webhook_endpoints")
        .set(set)
        .where("id", "=", r.id)
        .where("secret", "=", r.secret)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1 && "secret" in set) resealed++;
    }
    return { resealed, unreadable };
  });
}

/**
 * Reseals (or seals, when kept in the clear) every token-signing key under the current key,
 * and deletes those named in `discard`, in one transaction.
 */
async function resealTokenKeys(
  db: Kysely<DB>,
  ring: MasterKeyring,
  discard: ReadonlySet<string>,
): Promise<{ resealed: number; discarded: number }> {
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom("oauth_signing_keys")
      .select(["kid", "private_jwk"])
      .execute();
    let resealed = 0;
    let discarded = 0;
    for (const r of rows) {
      if (discard.has(r.kid)) {
        const res = await trx
          .deleteFrom("oauth_signing_keys")
          .where("kid", "=", r.kid)
          .where("private_jwk", "=", r.private_jwk)
          .executeTakeFirst();
        if (Number(res.numDeletedRows) === 1) discarded++;
        continue;
      }
      if (ring.isCurrent(r.private_jwk)) continue;
      const binding = tokenKeyBinding(r.kid);
      const next = isPlain(r.private_jwk)
        ? ring.seal(r.private_jwk, binding)
        : ring.reseal(r.private_jwk, binding);
      const res = await trx
        .updateTable("oauth_signing_keys")
        .set({ private_jwk: next })
        .where("kid", "=", r.kid)
        .where("private_jwk", "=", r.private_jwk)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) resealed++;
    }
    return { resealed, discarded };
  });
}

export const rotateMasterKey: Command = {
  name: "rotate-master-key",
  summary: "reseal signing secrets and token-signing keys under the current master key",
  synopsis: "[--discard-unreadable-token-keys]",
  help: `Finishes a master-key rotation. Run it with the servers' settings, where
KEYGATE_MASTER_KEY (or KEYGATE_MASTER_KEY_FILE) is the new key and
KEYGATE_MASTER_KEY_PREVIOUS the old one(s): every signing secret and every
token-signing private key not yet sealed under the new key is opened with the key
it names and sealed again under the new one, one transaction per table. Running
servers keep working throughout: they open values sealed under either key.

The procedure, without downtime:
  1. on every instance, set the new key as KEYGATE_MASTER_KEY and the old one as
     KEYGATE_MASTER_KEY_PREVIOUS; restart them one at a time
  2. run keygate rotate-master-key
  3. remove KEYGATE_MASTER_KEY_PREVIOUS from every instance (restart them again)

When any value opens with none of the configured keys, nothing is changed and the
command says which master key sealed it: add that key to KEYGATE_MASTER_KEY_PREVIOUS.
A signing secret whose master key is lost cannot be recovered: roll that key
(keygate keys roll <id> --grace-hours 0) for a new secret, or revoke it. A revoked
key's secret is left as it is.
Running the command again once everything is resealed changes nothing.

Options:
  --discard-unreadable-token-keys   delete the token-signing keys no configured key
                                    opens, instead of refusing: access tokens they
                                    signed stop working (a running server may accept
                                    one it has verified until it expires), and the
                                    servers make a new signing key for the next token

Example:
  KEYGATE_MASTER_KEY_FILE=/etc/keygate/master.key \\
  KEYGATE_MASTER_KEY_PREVIOUS=$(cat /etc/keygate/master.key.old) keygate rotate-master-key`,
  options: {
    "discard-unreadable-token-keys": { type: "boolean" },
  },
  args: [],
  async run(values, _args, io) {
    const config = loadConfig(io.env);
    if (config.masterKey === null) {
      throw new Failure(
        "rotate-master-key needs the new master key: set KEYGATE_MASTER_KEY (or KEYGATE_MASTER_KEY_FILE) to it and KEYGATE_MASTER_KEY_PREVIOUS to the old one(s), as on the servers",
      );
    }
    const ring = new MasterKeyring(config.masterKey, config.masterKeyPrevious);
    const discarding = values["discard-unreadable-token-keys"] === true;
    const { withKeygate } = await import("./session.js");
    await withKeygate(io.env, async (s) => {
      const { db } = s.kg.database;
      const found = await survey(db, ring);
      const blocking = found.secrets.filter((k) => !k.revoked);
      const problems: string[] = [];
      if (blocking.length > 0) {
        const listed = blocking
          .slice(0, 10)
          .map((k) => `${k.id} (${k.prefix}…)`)
          .join(", ");
        const more = blocking.length > 10 ? ` and ${blocking.length - 10} more` : "";
        problems.push(
          `${plural(blocking.length, "signing secret")} (of key${blocking.length === 1 ? "" : "s"} ${listed}${more}) ${blocking.length === 1 ? "is" : "are"} sealed under master key ${under(blocking)}, which neither KEYGATE_MASTER_KEY (${ring.currentId}) nor KEYGATE_MASTER_KEY_PREVIOUS holds: add that key to KEYGATE_MASTER_KEY_PREVIOUS, or, if it is lost, roll those keys (keygate keys roll <id> --grace-hours 0) for new secrets or revoke them`,
        );
      }
      if (found.tokenKeys.length > 0 && !discarding) {
        problems.push(
          `${plural(found.tokenKeys.length, "token-signing key")} ${found.tokenKeys.length === 1 ? "is" : "are"} sealed under master key ${under(found.tokenKeys)}, which no configured key opens: add that key to KEYGATE_MASTER_KEY_PREVIOUS, or, if it is lost, pass --discard-unreadable-token-keys to delete ${found.tokenKeys.length === 1 ? "it" : "them"} (access tokens ${found.tokenKeys.length === 1 ? "it" : "they"} signed stop working)`,
        );
      }
      if (problems.length > 0) throw new Failure(`${problems.join("; ")}; nothing was changed`);

      let secrets: number;
      let tokens: { resealed: number; discarded: number };
      let webhooks: { resealed: number; unreadable: number[] };
      try {
        secrets = await resealSecrets(db, ring);
        tokens = await resealTokenKeys(db, ring, new Set(found.tokenKeys.map((t) => t.kid)));
        webhooks = await resealWebhookSecrets(db, ring);
      } catch (err) {
        throw new Failure(
          `resealing stopped: ${(err as Error).message}; the table being resealed was left as it was, run the command again`,
        );
      }
      if (secrets + tokens.resealed + tokens.discarded + webhooks.resealed > 0) {
        await s.kg.audit.record(
          s.op,
          "master_key.rotate",
          { type: "master_key", id: ring.currentId },
          {
            signing_secrets: secrets,
            token_signing_keys: tokens.resealed,
            discarded_token_signing_keys: tokens.discarded,
            webhook_secrets: webhooks.resealed,
          },
        );
      }
      const parts = [
        `resealed ${plural(secrets, "signing secret")} and ${plural(tokens.resealed, "token-signing key")} under master key ${ring.currentId}`,
      ];
      if (tokens.discarded > 0)
        parts.push(
          `deleted ${plural(tokens.discarded, "unreadable token-signing key")}: access tokens ${tokens.discarded === 1 ? "it" : "they"} signed stop working (a running server may still accept one it has verified until it expires; restart the servers to end that), and the servers make a new signing key for the next token`,
        );
      if (webhooks.resealed > 0)
        parts.push(`resealed ${plural(webhooks.resealed, "webhook signing secret")}`);
      if (webhooks.unreadable.length > 0)
        parts.push(
          `left ${plural(webhooks.unreadable.length, "webhook endpoint's secret", "webhook endpoints' secrets")} (endpoint ${webhooks.unreadable.join(", ")}) that no configured key opens: give ${webhooks.unreadable.length === 1 ? "it" : "them"} a new one with POST /api/webhooks/<id>/rotate-secret`,
        );
      const skipped = found.secrets.length - blocking.length;
      if (skipped > 0)
        parts.push(
          `left ${plural(skipped, "revoked key's signing secret", "revoked keys' signing secrets")} sealed under a key no longer configured`,
        );
      if (ring.previousIds.length > 0)
        parts.push("remove KEYGATE_MASTER_KEY_PREVIOUS once every instance runs with the new key");
      io.out(`${parts.join("; ")}\n`);
    });
  },
};
