import type { Kysely, Selectable } from "kysely";
import type { Role } from "../auth/principal.js";
import type { UserRecord, UserRepo } from "../auth/service.js";
import type { RefreshRow, RefreshTokenRepo } from "../auth/tokens.js";
import type { DB } from "./schema.js";

function toUser(r: Selectable<DB["users"]>): UserRecord {
  return {
    id: r.id,
    username: r.username,
    role: r.role as Role,
    passwordHash: r.password_hash,
    disabledAt: r.disabled_at,
    deletedAt: r.deleted_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    twoFactorEnabledAt: r.totp_enabled_at,
  };
}

export class SqlUserRepo implements UserRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async countLive(): Promise<number> {
    const r = await this.db
      .selectFrom("users")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("deleted_at", "is", null)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async findById(id: number): Promise<UserRecord | null> {
    const r = await this.db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
    return r ? toUser(r) : null;
  }

  async findLiveByUsername(username: string): Promise<UserRecord | null> {
    const r = await this.db
      .selectFrom("users")
      .selectAll()
      .where("username", "=", username)
      .where("deleted_at", "is", null)
      .executeTakeFirst();
    return r ? toUser(r) : null;
  }

  async list(): Promise<UserRecord[]> {
    const rows = await this.db
      .selectFrom("users")
      .selectAll()
      .where("deleted_at", "is", null)
      .orderBy("id")
      .execute();
    return rows.map(toUser);
  }

  async insert(u: {
    username: string;
    passwordHash: string;
    role: Role;
    now: string;
  }): Promise<UserRecord | null> {
    const r = await this.db
      .insertInto("users")
      .values({
        username: u.username,
        password_hash: u.passwordHash,
        role: u.role,
        created_at: u.now,
        updated_at: u.now,
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
    return r ? toUser(r) : null;
  }

  async update(
    id: number,
    patch: { role?: Role; passwordHash?: string; disabledAt?: string | null },
    now: string,
  ): Promise<void> {
    await this.db
      .updateTable("users")
      .set({
        updated_at: now,
        ...(patch.role === undefined ? {} : { role: patch.role }),
        ...(patch.passwordHash === undefined ? {} : { password_hash: patch.passwordHash }),
        ...(patch.disabledAt === undefined ? {} : { disabled_at: patch.disabledAt }),
      })
      .where("id", "=", id)
      .execute();
  }

  async softDelete(id: number, now: string): Promise<void> {
    await this.db
      .updateTable("users")
      .set({ deleted_at: now, updated_at: now })
      .where("id", "=", id)
      .execute();
  }

  async countUsableAdmins(): Promise<number> {
    const r = await this.db
      .selectFrom("users")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("role", "=", "admin")
      .where("deleted_at", "is", null)
      .where("disabled_at", "is", null)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }
}

export class SqlRefreshTokenRepo implements RefreshTokenRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async insert(row: {
    hash: string;
    userId: number;
    family: string;
    expiresAt: string;
    now: string;
  }): Promise<void> {
    await this.db
      .insertInto("refresh_tokens")
      .values({
        token_hash: row.hash,
        user_id: row.userId,
        family: row.family,
        expires_at: row.expiresAt,
        created_at: row.now,
      })
      .execute();
  }

  async find(hash: string): Promise<RefreshRow | null> {
    const r = await this.db
      .selectFrom("refresh_tokens")
      .selectAll()
      .where("token_hash", "=", hash)
      .executeTakeFirst();
    return r
      ? {
          userId: r.user_id,
          family: r.family,
          expiresAt: r.expires_at,
          usedAt: r.used_at,
          revokedAt: r.revoked_at,
        }
      : null;
  }

  async consume(hash: string, now: string): Promise<boolean> {
    const r = await this.db
      .updateTable("refresh_tokens")
      .set({ used_at: now })
      .where("token_hash", "=", hash)
      .where("used_at", "is", null)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async revokeFamily(family: string, now: string): Promise<void> {
    await this.db
      .updateTable("refresh_tokens")
      .set({ revoked_at: now })
      .where("family", "=", family)
      .where("revoked_at", "is", null)
      .execute();
  }

  async revokeUser(userId: number, now: string): Promise<void> {
    await this.db
      .updateTable("refresh_tokens")
      .set({ revoked_at: now })
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .execute();
  }
}

export class SqlSettings {
  constructor(private readonly db: Kysely<DB>) {}

  /** Stores `value` under `name` unless something is there already; returns what is stored. */
  async getOrSet(name: string, value: string): Promise<string> {
    await this.db
      .insertInto("settings")
      .values({ name, value })
      .onConflict((oc) => oc.doNothing())
      .execute();
    const r = await this.db
      .selectFrom("settings")
      .select("value")
      .where("name", "=", name)
      .executeTakeFirstOrThrow();
    return r.value;
  }
}
