import type { Kysely } from "kysely";
import type { SigningKeyStore, StoredSigningKey } from "../credentials/tokens.js";
import type { DB } from "./schema.js";

/** The keys that sign access tokens, shared by every instance through the database. */
export class SqlSigningKeyStore implements SigningKeyStore {
  constructor(private readonly db: Kysely<DB>) {}

  async list(): Promise<StoredSigningKey[]> {
    const rows = await this.db
      .selectFrom("oauth_signing_keys")
      .selectAll()
      .orderBy("created_at", "asc")
      .execute();
    return rows.map((r) => ({
      kid: r.kid,
      publicJwk: JSON.parse(r.public_jwk) as StoredSigningKey["publicJwk"],
      privateJwk: r.private_jwk,
      createdAt: Number(r.created_at),
      retiredAt: r.retired_at === null ? null : Number(r.retired_at),
    }));
  }

  async insert(k: StoredSigningKey): Promise<void> {
    await this.db
      .insertInto("oauth_signing_keys")
      .values({
        kid: k.kid,
        public_jwk: JSON.stringify(k.publicJwk),
        private_jwk: k.privateJwk,
        created_at: k.createdAt,
        retired_at: k.retiredAt,
      })
      .execute();
  }

  async retire(kid: string, at: number): Promise<void> {
    await this.db
      .updateTable("oauth_signing_keys")
      .set({ retired_at: at })
      .where("kid", "=", kid)
      .where("retired_at", "is", null)
      .execute();
  }

  async remove(kid: string): Promise<void> {
    await this.db.deleteFrom("oauth_signing_keys").where("kid", "=", kid).execute();
  }

  /** Rewrites each private key `reseal` changes (a master-key rotation); answers how many changed. */
  async resealAll(reseal: (stored: string, kid: string) => string): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom("oauth_signing_keys")
        .select(["kid", "private_jwk"])
        .execute();
      let changed = 0;
      for (const r of rows) {
        const next = reseal(r.private_jwk, r.kid);
        if (next === r.private_jwk) continue;
        await trx
          .updateTable("oauth_signing_keys")
          .set({ private_jwk: next })
          .where("kid", "=", r.kid)
          .execute();
        changed++;
      }
      return changed;
    });
  }
}

/** Access tokens revoked before their expiry (RFC 7009), and the keys' token counts. */
export class SqlTokenLedger {
  constructor(private readonly db: Kysely<DB>) {}

  async revoke(jti: string, apiKeyId: number, expiresAt: number): Promise<void> {
    await this.db
      .insertInto("oauth_revoked_tokens")
      .values({ jti, api_key_id: apiKeyId, expires_at: expiresAt })
      .onConflict((oc) => oc.column("jti").doNothing())
      .execute();
  }

  /** The ids of a key's revoked tokens that have not expired yet. */
  async revokedFor(apiKeyId: number, now: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom("oauth_revoked_tokens")
      .select("jti")
      .where("api_key_id", "=", apiKeyId)
      .where("expires_at", ">", now)
      .execute();
    return rows.map((r) => r.jti);
  }

  /** Forgets revocations of tokens that have expired anyway. */
  async prune(now: number): Promise<void> {
    await this.db.deleteFrom("oauth_revoked_tokens").where("expires_at", "<=", now).execute();
  }

  /** Counts a token issued for the key. */
  async issued(apiKeyId: number, at: string): Promise<void> {
    await this.db
      .updateTable("api_keys")
      .set((eb) => ({ tokens_issued: eb("tokens_issued", "+", 1), last_token_at: at }))
      .where("id", "=", apiKeyId)
      .execute();
  }
}
