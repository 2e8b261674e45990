import type { Audit } from "../audit.js";
import { AppError, conflict, forbidden, invalid, notFound } from "../errors.js";
import type { Limiter } from "../ratelimit/limiter.js";
import {
  burnPasswordCheck,
  generatePassword,
  hashPassword,
  passwordProblem,
  verifyPassword,
} from "./passwords.js";
import { describe, type Principal, type Role } from "./principal.js";
import type { TokenPair, TokenService } from "./tokens.js";

export type UserRecord = {
  id: number;
  username: string;
  role: Role;
  passwordHash: string;
  disabledAt: string | null;
  deletedAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** When two-factor sign-in took effect; null when it is off (or only pending). */
  twoFactorEnabledAt: string | null;
};

export type UserView = {
  id: number;
  username: string;
  role: Role;
  disabled: boolean;
  two_factor_enabled: boolean;
  created_at: string;
  updated_at: string;
};

/** What a sign-in sends besides the password, for a user with two-factor sign-in on. */
export type SecondFactorProof = { otp?: string; recoveryCode?: string };

/** Checks the second factor at sign-in (`auth/twofactor.ts`). */
export interface SecondFactor {
  verifyAtSignIn(
    user: UserRecord,
    proof: SecondFactorProof,
    ip: string,
  ): Promise<"ok" | "missing" | "wrong" | "reused">;
}

export interface UserRepo {
  countLive(): Promise<number>;
  findById(id: number): Promise<UserRecord | null>;
  findLiveByUsername(username: string): Promise<UserRecord | null>;
  list(): Promise<UserRecord[]>;
  /** Null when the username is taken by a live user. */
  insert(u: {
    username: string;
    passwordHash: string;
    role: Role;
    now: string;
  }): Promise<UserRecord | null>;
  update(
    id: number,
    patch: { role?: Role; passwordHash?: string; disabledAt?: string | null },
    now: string,
  ): Promise<void>;
  softDelete(id: number, now: string): Promise<void>;
  countUsableAdmins(): Promise<number>;
}

export type AuthOptions = {
  users: UserRepo;
  tokens: TokenService;
  limiter: Limiter;
  audit: Audit;
  /** Called when a user's role or standing changes, so cached keys re-read their owner. */
  onUserChanged: (userId: number) => void | Promise<void>;
  /** Asked at sign-in for users with two-factor sign-in on. */
  secondFactor?: SecondFactor;
  now?: () => Date;
};

/** Failed logins allowed per window, per client IP and per username. */
const LOGIN_FAILS_PER_IP = 20;
const LOGIN_FAILS_PER_USER = 10;
const LOGIN_WINDOW_MS = 15 * 60_000;

export function toUserView(u: UserRecord): UserView {
  return {
    id: u.id,
    username: u.username,
    role: u.role,
    disabled: u.disabledAt !== null,
    two_factor_enabled: u.twoFactorEnabledAt !== null,
    created_at: u.createdAt,
    updated_at: u.updatedAt,
  };
}

export function usable(u: UserRecord | null): u is UserRecord {
  return u !== null && u.deletedAt === null && u.disabledAt === null;
}

export class AuthService {
  private readonly now: () => Date;

  constructor(private readonly o: AuthOptions) {
    this.now = o.now ?? (() => new Date());
  }

  /** Creates the first admin when there are no users; returns the password only if generated. */
  async bootstrap(
    username: string,
    password: string | null,
  ): Promise<{ created: boolean; generated: string | null }> {
    if ((await this.o.users.countLive()) > 0) return { created: false, generated: null };
    const generated = password === null ? generatePassword() : null;
    const created = await this.o.users.insert({
      username,
      passwordHash: await hashPassword(password ?? (generated as string)),
      role: "admin",
      now: this.now().toISOString(),
    });
    return { created: created !== null, generated: created ? generated : null };
  }

  /** Refuses (429) while this IP or username has spent its failed sign-in attempts. */
  async checkSignInThrottle(username: string, ip: string): Promise<void> {
    const now = this.now().getTime();
    for (const [bucket, limit] of [
      [`loginfail:ip:${ip}`, LOGIN_FAILS_PER_IP],
      [failedLoginBucket(username), LOGIN_FAILS_PER_USER],
    ] as const) {
      const state = await this.o.limiter.peek(bucket, limit, LOGIN_WINDOW_MS, now);
      if (!state.allowed) {
        const wait = Math.ceil(state.resetMs / 1000);
        throw new AppError(
          "RATE_LIMIT_EXCEEDED",
          `too many failed sign-in attempts; try again in ${wait} s`,
          undefined,
          wait,
        );
      }
    }
  }

  /** Counts a wrong password or second-factor code against the IP and the username. */
  async countFailedSignIn(
    username: string,
    ip: string,
    userId: number | null,
    details?: Record<string, unknown>,
  ): Promise<void> {
    const now = this.now().getTime();
    await this.o.limiter.hit(`loginfail:ip:${ip}`, LOGIN_FAILS_PER_IP, LOGIN_WINDOW_MS, now);
    await this.o.limiter.hit(
      failedLoginBucket(username),
      LOGIN_FAILS_PER_USER,
      LOGIN_WINDOW_MS,
      now,
    );
    await this.o.audit.record(
      { userId: null, username, via: "jwt", ip },
      "auth.login_failed",
      { type: "user", id: userId },
      details,
    );
  }

  /** Lifts the failed sign-in lock on a username (a new password, a second factor reset). */
  async liftSignInLock(username: string): Promise<void> {
    await this.o.limiter.reset(failedLoginBucket(username), LOGIN_WINDOW_MS, this.now().getTime());
  }

  async login(
    username: string,
    password: string,
    ip: string,
    proof: SecondFactorProof = {},
  ): Promise<TokenPair & { user: { id: number; username: string; role: Role } }> {
    await this.checkSignInThrottle(username, ip);
    if (proof.otp !== undefined && proof.recoveryCode !== undefined) {
      throw new AppError("VALIDATION_ERROR", "send either otp or recovery_code, not both", [
        { field: "recovery_code", message: "cannot be sent together with otp" },
      ]);
    }
    const user = await this.o.users.findLiveByUsername(username);
    let ok = false;
    if (user) ok = await verifyPassword(password, user.passwordHash);
    else await burnPasswordCheck(password);
    if (!user || !ok || user.disabledAt !== null) {
      await this.countFailedSignIn(username, ip, user?.id ?? null);
      // One message for unknown user, wrong password and disabled account alike.
      throw new AppError("INVALID_CREDENTIALS", "username or password is incorrect");
    }
    if (user.twoFactorEnabledAt !== null && this.o.secondFactor) {
      const second = await this.o.secondFactor.verifyAtSignIn(user, proof, ip);
      if (second === "missing") {
        throw new AppError(
          "TWO_FACTOR_REQUIRED",
          "this account has two-factor sign-in: send the 6-digit code from the authenticator app as otp (or a recovery code as recovery_code) with the username and password",
          [{ field: "otp", message: "is required for this account" }],
        );
      }
      if (second !== "ok") {
        await this.countFailedSignIn(username, ip, user.id, {
          second_factor: proof.otp !== undefined ? "otp" : "recovery_code",
        });
        throw new AppError(
          "INVALID_TWO_FACTOR_CODE",
          second === "reused"
            ? "this code was already used; wait for the authenticator app to show the next one (codes change every 30 s)"
            : proof.otp !== undefined
              ? "the code is not valid; enter the current 6-digit code from the authenticator app, and check that the phone's clock is right"
              : "the recovery code is not valid or was already used; each recovery code works once",
        );
      }
    }
    await this.liftSignInLock(username);
    const pair = await this.o.tokens.issue(user);
    await this.o.audit.record(this.asPrincipal(user, ip), "auth.login", {
      type: "user",
      id: user.id,
    });
    return { ...pair, user: { id: user.id, username: user.username, role: user.role } };
  }

  async refresh(
    token: string,
  ): Promise<TokenPair & { user: { id: number; username: string; role: Role } }> {
    const spent = await this.o.tokens.spendRefresh(token);
    if (!spent.ok) {
      const why = {
        unknown: "refresh token is not valid",
        expired: "refresh token has expired; sign in again",
        revoked: "refresh token has been ended; sign in again",
        reused:
          "refresh token was already used; every session from that sign-in has been ended — sign in again",
      }[spent.reason];
      throw new AppError("UNAUTHORIZED", why);
    }
    const user = await this.o.users.findById(spent.userId);
    if (!usable(user)) throw new AppError("UNAUTHORIZED", "this account is disabled or deleted");
    const pair = await this.o.tokens.issue(user, spent.family);
    return { ...pair, user: { id: user.id, username: user.username, role: user.role } };
  }

  async logout(p: Principal, refreshToken?: string): Promise<void> {
    await this.o.tokens.end(p.userId, refreshToken);
    await this.o.audit.record(p, "auth.logout", { type: "user", id: p.userId });
  }

  /** The principal for a valid access token, or an UNAUTHORIZED error that says why not. */
  async principalFromAccessToken(token: string, ip: string): Promise<Principal> {
    const userId = await this.o.tokens.verifyAccess(token);
    if (userId === null) {
      throw new AppError(
        "UNAUTHORIZED",
        "access token is invalid or expired; refresh it or sign in again",
      );
    }
    const user = await this.o.users.findById(userId);
    if (!usable(user)) throw new AppError("UNAUTHORIZED", "this account is disabled or deleted");
    return this.asPrincipal(user, ip);
  }

  private asPrincipal(user: UserRecord, ip: string): Principal {
    return {
      userId: user.id,
      username: user.username,
      role: user.role,
      via: "jwt",
      ip,
      twoFactor: user.twoFactorEnabledAt !== null,
    };
  }

  async me(p: Principal): Promise<UserView> {
    const user = await this.o.users.findById(p.userId);
    if (!usable(user)) throw notFound(`user ${p.userId}`);
    return toUserView(user);
  }

  async listUsers(p: Principal): Promise<UserView[]> {
    requireAdmin(p, "list users");
    return (await this.o.users.list()).map(toUserView);
  }

  async createUser(
    p: Principal,
    input: { username: string; password: string; role: Role },
  ): Promise<UserView> {
    requireAdmin(p, "create users");
    checkPassword(input.password);
    const created = await this.o.users.insert({
      username: input.username,
      passwordHash: await hashPassword(input.password),
      role: input.role,
      now: this.now().toISOString(),
    });
    if (!created) throw conflict(`username "${input.username}" is already taken`);
    await this.o.audit.record(
      p,
      "user.create",
      { type: "user", id: created.id },
      { username: created.username, role: created.role },
    );
    return toUserView(created);
  }

  async updateUser(
    p: Principal,
    id: number,
    patch: { role?: Role; password?: string; disabled?: boolean },
  ): Promise<UserView> {
    requireAdmin(p, "change users");
    const user = await this.o.users.findById(id);
    if (!user || user.deletedAt !== null) throw notFound(`user ${id}`);
    if (patch.password !== undefined) checkPassword(patch.password);
    const demotes = patch.role !== undefined && patch.role !== "admin" && user.role === "admin";
    const disables = patch.disabled === true && user.disabledAt === null;
    if (id === p.userId && (demotes || disables)) {
      throw conflict("you cannot disable or demote your own account; ask another admin");
    }
    if (
      (demotes || disables) &&
      user.role === "admin" &&
      (await this.o.users.countUsableAdmins()) <= 1
    ) {
      throw conflict("this is the last active admin; make another admin first");
    }
    const now = this.now().toISOString();
    await this.o.users.update(
      id,
      {
        role: patch.role,
        passwordHash: patch.password === undefined ? undefined : await hashPassword(patch.password),
        disabledAt:
          patch.disabled === undefined
            ? undefined
            : patch.disabled
              ? (user.disabledAt ?? now)
              : null,
      },
      now,
    );
    if (patch.password !== undefined || disables) await this.o.tokens.endAllFor(id);
    // A new password lifts the sign-in lock that failed attempts on the old one set.
    if (patch.password !== undefined) await this.liftSignInLock(user.username);
    await this.o.onUserChanged(id);
    const changed = Object.keys(patch).filter(
      (k) => (patch as Record<string, unknown>)[k] !== undefined,
    );
    await this.o.audit.record(
      p,
      "user.update",
      { type: "user", id },
      { changed, role: patch.role, disabled: patch.disabled },
    );
    return toUserView((await this.o.users.findById(id)) as UserRecord);
  }

  async deleteUser(p: Principal, id: number): Promise<void> {
    requireAdmin(p, "delete users");
    const user = await this.o.users.findById(id);
    if (!user || user.deletedAt !== null) throw notFound(`user ${id}`);
    if (id === p.userId) throw conflict("you cannot delete your own account; ask another admin");
    if (
      user.role === "admin" &&
      user.disabledAt === null &&
      (await this.o.users.countUsableAdmins()) <= 1
    ) {
      throw conflict("this is the last active admin; make another admin first");
    }
    await this.o.users.softDelete(id, this.now().toISOString());
    await this.o.tokens.endAllFor(id);
    await this.o.onUserChanged(id);
    await this.o.audit.record(p, "user.delete", { type: "user", id }, { username: user.username });
  }
}

function failedLoginBucket(username: string): string {
  return `loginfail:user:${username.toLowerCase()}`;
}

function checkPassword(password: string): void {
  const problem = passwordProblem(password);
  if (problem) throw invalid("password", problem);
}

export function requireAdmin(p: Principal, what: string): void {
  if (p.role !== "admin") {
    throw forbidden(`only an admin can ${what}; ${describe(p)}`);
  }
}
