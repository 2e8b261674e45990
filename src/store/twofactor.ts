import type { Kysely } from "kysely";
import type { TwoFactorRepo, TwoFactorState } from "../auth/twofactor.js";
import type { DB } from "./schema.js";

/** Two-factor state on the `users` row; recovery codes in `recovery_codes`. */
export class SqlTwoFactorRepo implements TwoFactorRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async state(userId: number): Promise<TwoFactorState | null> {
    const r = await this.db
      .selectFrom("users")
      .select(["totp_secret", "totp_enabled_at", "totp_last_step"])
      .where("id", "=", userId)
      .where("deleted_at", "is", null)
      .executeTakeFirst();
    if (!r) return null;
    return {
      secret: r.totp_secret,
      enabledAt: r.totp_enabled_at,
      lastStep: r.totp_last_step === null ? null : Number(r.totp_last_step),
    };
  }

  async startEnrolment(userId: number, secret: string, now: string): Promise<boolean> {
    const r = await this.db
      .updateTable("users")
      .set({ totp_secret: secret, totp_last_step: null, updated_at: now })
      .where("id", "=", userId)
      .where("totp_enabled_at", "is", null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async confirm(
    userId: number,
    secret: string,
    step: number,
    codeHashes: string[],
    now: string,
  ): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx
        .updateTable("users")
        .set({ totp_enabled_at: now, totp_last_step: step, updated_at: now })
        .where("id", "=", userId)
        .where("totp_secret", "=", secret)
        .where("totp_enabled_at", "is", null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await tx.deleteFrom("recovery_codes").where("user_id", "=", userId).execute();
      await tx
        .insertInto("recovery_codes")
        .values(codeHashes.map((h) => ({ user_id: userId, code_hash: h, created_at: now })))
        .execute();
      return true;
    });
  }

  async spendStep(userId: number, step: number): Promise<boolean> {
    const r = await this.db
      .updateTable("users")
      .set({ totp_last_step: step })
      .where("id", "=", userId)
      .where("totp_secret", "is not", null)
      .where((eb) => eb.or([eb("totp_last_step", "is", null), eb("totp_last_step", "<", step)]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async spendRecoveryCode(userId: number, hash: string, now: string): Promise<boolean> {
    const r = await this.db
      .updateTable("recovery_codes")
      .set({ used_at: now })
      .where("user_id", "=", userId)
      .where("code_hash", "=", hash)
      .where("used_at", "is", null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async replaceRecoveryCodes(userId: number, codeHashes: string[], now: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom("recovery_codes").where("user_id", "=", userId).execute();
      await tx
        .insertInto("recovery_codes")
        .values(codeHashes.map((h) => ({ user_id: userId, code_hash: h, created_at: now })))
        .execute();
    });
  }

  async recoveryCodesLeft(userId: number): Promise<number> {
    const r = await this.db
      .selectFrom("recovery_codes")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("user_id", "=", userId)
      .where("used_at", "is", null)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async clear(userId: number, now: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx
        .updateTable("users")
        .set({ totp_secret: null, totp_enabled_at: null, totp_last_step: null, updated_at: now })
        .where("id", "=", userId)
        .where("totp_secret", "is not", null)
        .executeTakeFirst();
      await tx.deleteFrom("recovery_codes").where("user_id", "=", userId).execute();
      return Number(r.numUpdatedRows) === 1;
    });
  }
}
