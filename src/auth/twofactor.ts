import type { Audit } from "../audit.js";
import { AppError, conflict, invalid, notFound } from "../errors.js";
import { verifyPassword } from "./passwords.js";
import type { Principal, Role } from "./principal.js";
import {
  type AuthService,
  requireAdmin,
  type SecondFactor,
  type SecondFactorProof,
  type UserRecord,
  type UserRepo,
} from "./service.js";
import {
  hashRecoveryCode,
  ISSUER,
  matchTotp,
  newRecoveryCodes,
  newTotpSecret,
  normaliseRecoveryCode,
  otpauthUrl,
  qrSvg,
  TOTP_ALGORITHM,
  TOTP_DIGITS,
  TOTP_PERIOD_S,
} from "./totp.js";

/** `KEYGATE_REQUIRE_2FA`: who must turn on two-factor sign-in before managing keys. */
export type TwoFactorPolicy = "off" | "admins" | "all";

export function twoFactorRequired(policy: TwoFactorPolicy, role: Role): boolean {
  return policy === "all" || (policy === "admins" && role === "admin");
}

/**
 * Refuses a signed-in user the policy covers who has not turned two-factor sign-in on, naming
 * what to do. The operator at the command line is no signed-in user and is not asked.
 */
export function requireTwoFactorFor(policy: TwoFactorPolicy, p: Principal, what: string): void {
  if (p.via !== "jwt" || p.twoFactor || !twoFactorRequired(policy, p.role)) return;
  const who = policy === "all" ? "every user" : "admins";
  throw new AppError(
    "TWO_FACTOR_ENROLMENT_REQUIRED",
    `turn on two-factor sign-in before you ${what}: this Keygate requires it for ${who} (KEYGATE_REQUIRE_2FA=${policy}); in the console open "Two-factor sign-in" from the account menu, or call POST /api/auth/2fa/enrol then POST /api/auth/2fa/confirm`,
  );
}

/** A user's two-factor state: a secret with no `enabledAt` is an enrolment not yet confirmed. */
export type TwoFactorState = {
  secret: string | null;
  enabledAt: string | null;
  lastStep: number | null;
};

export interface TwoFactorRepo {
  /** Null for an unknown or deleted user. */
  state(userId: number): Promise<TwoFactorState | null>;
  /** Stores a pending secret (replacing a pending one); false when two-factor is already on. */
  startEnrolment(userId: number, secret: string, now: string): Promise<boolean>;
  /** Turns the pending `secret` on with `step` spent and these recovery codes; false if it changed meanwhile. */
  confirm(
    userId: number,
    secret: string,
    step: number,
    codeHashes: string[],
    now: string,
  ): Promise<boolean>;
  /** Records `step` as spent when it is after the last one; false when it was spent already. */
  spendStep(userId: number, step: number): Promise<boolean>;
  /** Spends an unused recovery code; false when there is none with that hash. */
  spendRecoveryCode(userId: number, hash: string, now: string): Promise<boolean>;
  replaceRecoveryCodes(userId: number, codeHashes: string[], now: string): Promise<void>;
  recoveryCodesLeft(userId: number): Promise<number>;
  /** Turns two-factor off (or drops a pending enrolment); true when there was something. */
  clear(userId: number, now: string): Promise<boolean>;
}

export type TwoFactorStatus = {
  enabled: boolean;
  enabled_at: string | null;
  /** An enrolment was started and awaits its first code. */
  pending: boolean;
  recovery_codes_left: number;
  /** KEYGATE_REQUIRE_2FA asks this user to have it before managing keys. */
  required: boolean;
};

export type Enrolment = {
  secret: string;
  otpauth_url: string;
  qr_svg: string;
  issuer: string;
  account: string;
  algorithm: string;
  digits: number;
  period: number;
};

/** A password or a current code: what turning two-factor off (or new recovery codes) needs. */
export type Confirmation = { password?: string; code?: string };

export type TwoFactorOptions = {
  repo: TwoFactorRepo;
  users: UserRepo;
  auth: AuthService;
  audit: Audit;
  /** Ends every session of a user (a reset from the command line). */
  endSessions: (userId: number) => Promise<void>;
  policy: TwoFactorPolicy;
  now?: () => Date;
};

/**
 * TOTP two-factor sign-in (RFC 6238): enrolment confirmed by a first code, one-use recovery
 * codes kept as hashes, a code good once, and the KEYGATE_REQUIRE_2FA policy. Secrets and
 * codes appear only in the one response that creates them.
 */
export class TwoFactorService implements SecondFactor {
  private readonly now: () => Date;

  constructor(private readonly o: TwoFactorOptions) {
    this.now = o.now ?? (() => new Date());
  }

  get policy(): TwoFactorPolicy {
    return this.o.policy;
  }

  requiredFor(p: Pick<Principal, "role">): boolean {
    return twoFactorRequired(this.o.policy, p.role);
  }

  async status(p: Principal): Promise<TwoFactorStatus> {
    const state = await this.stateOf(p);
    return {
      enabled: state.enabledAt !== null,
      enabled_at: state.enabledAt,
      pending: state.secret !== null && state.enabledAt === null,
      recovery_codes_left:
        state.enabledAt === null ? 0 : await this.o.repo.recoveryCodesLeft(p.userId),
      required: this.requiredFor(p),
    };
  }

  /** Starts (or restarts) an enrolment: a new secret, shown this once, awaiting its first code. */
  async enrol(p: Principal, password: string): Promise<Enrolment> {
    const user = await this.self(p);
    if (user.twoFactorEnabledAt !== null) {
      throw conflict(
        "two-factor sign-in is already on; turn it off first (POST /api/auth/2fa/disable) to move it to another authenticator",
      );
    }
    await this.checkPassword(user, password, p.ip);
    const secret = newTotpSecret();
    const now = this.now().toISOString();
    if (!(await this.o.repo.startEnrolment(user.id, secret, now))) {
      throw conflict("two-factor sign-in was turned on meanwhile; reload to see it");
    }
    await this.o.audit.record(p, "auth.2fa_enrol", { type: "user", id: user.id });
    const url = otpauthUrl(secret, user.username);
    return {
      secret,
      otpauth_url: url,
      qr_svg: await qrSvg(url),
      issuer: ISSUER,
      account: user.username,
      algorithm: TOTP_ALGORITHM,
      digits: TOTP_DIGITS,
      period: TOTP_PERIOD_S,
    };
  }

  /** The first valid code turns the enrolment on; answers the recovery codes, this once. */
  async confirm(
    p: Principal,
    code: string,
  ): Promise<{ enabled_at: string; recovery_codes: string[] }> {
    const user = await this.self(p);
    const state = await this.stateOf(p);
    if (state.enabledAt !== null) throw conflict("two-factor sign-in is already on");
    if (state.secret === null) {
      throw conflict(
        "no enrolment to confirm; start one with POST /api/auth/2fa/enrol, then send the code it shows",
      );
    }
    const match = matchTotp(state.secret, code, this.now().getTime(), state.lastStep);
    if (match.result !== "ok") {
      throw invalid(
        "code",
        "is not the current code of the new authenticator entry; scan the QR code (or type the secret), then enter the 6 digits it shows — check that the phone's clock is right",
      );
    }
    const codes = newRecoveryCodes();
    const now = this.now().toISOString();
    const done = await this.o.repo.confirm(
      user.id,
      state.secret,
      match.step,
      codes.map((c) => hashRecoveryCode(normaliseRecoveryCode(c) as string)),
      now,
    );
    if (!done) throw conflict("the enrolment changed meanwhile; start it again");
    await this.o.audit.record(
      p,
      "auth.2fa_confirm",
      { type: "user", id: user.id },
      { recovery_codes: codes.length },
    );
    return { enabled_at: now, recovery_codes: codes };
  }

  /** Turns two-factor sign-in off, given the password or a current code. */
  async disable(p: Principal, proof: Confirmation): Promise<void> {
    const user = await this.self(p);
    const state = await this.stateOf(p);
    if (state.secret === null) throw conflict("two-factor sign-in is not on for this account");
    // A pending enrolment is dropped without proof: it never protected anything.
    if (state.enabledAt !== null) await this.confirmIdentity(user, state, proof, p.ip);
    await this.o.repo.clear(user.id, this.now().toISOString());
    await this.o.audit.record(
      p,
      "auth.2fa_disable",
      { type: "user", id: user.id },
      { pending_only: state.enabledAt === null },
    );
  }

  /** New recovery codes replace the old ones, given the password or a current code. */
  async regenerateRecoveryCodes(
    p: Principal,
    proof: Confirmation,
  ): Promise<{ recovery_codes: string[] }> {
    const user = await this.self(p);
    const state = await this.stateOf(p);
    if (state.enabledAt === null) {
      throw conflict("two-factor sign-in is not on; recovery codes come with turning it on");
    }
    await this.confirmIdentity(user, state, proof, p.ip);
    const codes = newRecoveryCodes();
    await this.o.repo.replaceRecoveryCodes(
      user.id,
      codes.map((c) => hashRecoveryCode(normaliseRecoveryCode(c) as string)),
      this.now().toISOString(),
    );
    await this.o.audit.record(
      p,
      "auth.2fa_recovery_codes_regenerate",
      { type: "user", id: user.id },
      { recovery_codes: codes.length },
    );
    return { recovery_codes: codes };
  }

  /**
   * For a lock-out (`keygate reset-2fa`): turns two-factor off for a user, drops its recovery
   * codes, ends its sessions and lifts its sign-in lock. False when it was not on or pending.
   */
  async reset(p: Principal, userId: number): Promise<boolean> {
    requireAdmin(p, "reset two-factor sign-in");
    const user = await this.o.users.findById(userId);
    if (!user || user.deletedAt !== null) throw notFound(`user ${userId}`);
    const was = await this.o.repo.state(userId);
    const cleared = await this.o.repo.clear(userId, this.now().toISOString());
    if (!cleared) return false;
    await this.o.endSessions(userId);
    await this.o.auth.liftSignInLock(user.username);
    await this.o.audit.record(
      p,
      "auth.2fa_reset",
      { type: "user", id: userId },
      { username: user.username, was_enabled: was?.enabledAt != null },
    );
    return true;
  }

  /** The sign-in's second step: a current code, or an unused recovery code. */
  async verifyAtSignIn(
    user: UserRecord,
    proof: SecondFactorProof,
    ip: string,
  ): Promise<"ok" | "missing" | "wrong" | "reused"> {
    if (proof.otp === undefined && proof.recoveryCode === undefined) return "missing";
    const state = await this.o.repo.state(user.id);
    if (!state || state.secret === null || state.enabledAt === null) return "wrong";
    if (proof.otp !== undefined) return this.spendCode(user.id, state, proof.otp);
    const normalised = normaliseRecoveryCode(proof.recoveryCode as string);
    if (normalised === null) return "wrong";
    const now = this.now().toISOString();
    if (!(await this.o.repo.spendRecoveryCode(user.id, hashRecoveryCode(normalised), now)))
      return "wrong";
    const left = await this.o.repo.recoveryCodesLeft(user.id);
    await this.o.audit.record(
      { userId: user.id, username: user.username, role: user.role, via: "jwt", ip },
      "auth.2fa_recovery_code_used",
      { type: "user", id: user.id },
      { recovery_codes_left: left },
    );
    return "ok";
  }

  /** Matches a code and spends its step, so the same code cannot be used twice. */
  private async spendCode(
    userId: number,
    state: TwoFactorState,
    code: string,
  ): Promise<"ok" | "wrong" | "reused"> {
    const match = matchTotp(state.secret as string, code, this.now().getTime(), state.lastStep);
    if (match.result !== "ok") return match.result;
    // Two requests with the same code at once: only one spends its step.
    return (await this.o.repo.spendStep(userId, match.step)) ? "ok" : "reused";
  }

  /** The password or a current code, counted by the sign-in throttle when wrong. */
  private async confirmIdentity(
    user: UserRecord,
    state: TwoFactorState,
    proof: Confirmation,
    ip: string,
  ): Promise<void> {
    if ((proof.password === undefined) === (proof.code === undefined)) {
      throw new AppError(
        "VALIDATION_ERROR",
        "confirm it with your password or a current code from the authenticator app: send password or code (one of them)",
        [{ field: "password", message: "send password or code, one of them" }],
      );
    }
    if (proof.password !== undefined) return this.checkPassword(user, proof.password, ip);
    await this.o.auth.checkSignInThrottle(user.username, ip);
    const result = await this.spendCode(user.id, state, proof.code as string);
    if (result === "ok") return;
    await this.o.auth.countFailedSignIn(user.username, ip, user.id, { second_factor: "otp" });
    throw invalid(
      "code",
      result === "reused"
        ? "was already used; wait for the authenticator app to show the next one"
        : "is not the current code from the authenticator app",
    );
  }

  private async checkPassword(user: UserRecord, password: string, ip: string): Promise<void> {
    await this.o.auth.checkSignInThrottle(user.username, ip);
    if (await verifyPassword(password, user.passwordHash)) return;
    await this.o.auth.countFailedSignIn(user.username, ip, user.id, { confirming: "password" });
    throw invalid("password", "is not your current password");
  }

  /** The signed-in user behind `p`; two-factor belongs to people, not to the operator. */
  private async self(p: Principal): Promise<UserRecord> {
    if (p.via !== "jwt") {
      throw new AppError(
        "FORBIDDEN",
        "two-factor sign-in is set by the signed-in user; the operator can only reset it (keygate reset-2fa)",
      );
    }
    const user = await this.o.users.findById(p.userId);
    if (!user || user.deletedAt !== null) throw notFound(`user ${p.userId}`);
    return user;
  }

  private async stateOf(p: Principal): Promise<TwoFactorState> {
    const state = await this.o.repo.state(p.userId);
    if (!state) throw notFound(`user ${p.userId}`);
    return state;
  }
}
