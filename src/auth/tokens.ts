import { createHash, randomBytes } from "node:crypto";
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";

export type TokenPair = {
  access_token: string;
  refresh_token: string;
  token_type: "Bearer";
  expires_in: number;
};

export type RefreshRow = {
  userId: number;
  family: string;
  expiresAt: string;
  usedAt: string | null;
  revokedAt: string | null;
};

export interface RefreshTokenRepo {
  insert(row: {
    hash: string;
    userId: number;
    family: string;
    expiresAt: string;
    now: string;
  }): Promise<void>;
  find(hash: string): Promise<RefreshRow | null>;
  /** Marks the token used only if it is still unused and not revoked; true when this call did it. */
  consume(hash: string, now: string): Promise<boolean>;
  revokeFamily(family: string, now: string): Promise<void>;
  revokeUser(userId: number, now: string): Promise<void>;
}

export type TokenOptions = {
  secret: Uint8Array;
  repo: RefreshTokenRepo;
  now?: () => Date;
  accessTtlS?: number;
  refreshTtlS?: number;
};

export type RefreshOutcome =
  | { ok: true; userId: number; family: string }
  | { ok: false; reason: "unknown" | "expired" | "reused" | "revoked" };

const ISSUER = "keygate";

/** Short-lived signed access tokens, and opaque one-use refresh tokens stored as hashes. */
export class TokenService {
  private readonly now: () => Date;
  readonly accessTtlS: number;
  private readonly refreshTtlS: number;

  constructor(private readonly opts: TokenOptions) {
    this.now = opts.now ?? (() => new Date());
    this.accessTtlS = opts.accessTtlS ?? 900;
    this.refreshTtlS = opts.refreshTtlS ?? 30 * 24 * 3600;
  }

  async issue(user: { id: number; role: string }, family?: string): Promise<TokenPair> {
    const now = this.now();
    const iat = Math.floor(now.getTime() / 1000);
    const access = await new SignJWT({ role: user.role })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(String(user.id))
      .setIssuer(ISSUER)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.accessTtlS)
      .sign(this.opts.secret);
    const refresh = `rt_${randomBytes(32).toString("base64url")}`;
    await this.opts.repo.insert({
      hash: hashToken(refresh),
      userId: user.id,
      family: family ?? randomBytes(12).toString("base64url"),
      expiresAt: new Date(now.getTime() + this.refreshTtlS * 1000).toISOString(),
      now: now.toISOString(),
    });
    return {
      access_token: access,
      refresh_token: refresh,
      token_type: "Bearer",
      expires_in: this.accessTtlS,
    };
  }

  /** The user id in a valid access token, or null for an expired, tampered or foreign one. */
  async verifyAccess(token: string): Promise<number | null> {
    try {
      const { payload } = await jwtVerify(token, this.opts.secret, {
        issuer: ISSUER,
        algorithms: ["HS256"],
        currentDate: this.now(),
      });
      const id = Number(payload.sub);
      return Number.isSafeInteger(id) && id > 0 ? id : null;
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) return null;
      throw err;
    }
  }

  /**
   * Spends a refresh token. A token works once; presenting a spent one again means it
   * leaked, so its whole family (every token descended from the same login) is ended.
   */
  async spendRefresh(token: string): Promise<RefreshOutcome> {
    if (!/^rt_[A-Za-z0-9_-]{43}$/.test(token)) return { ok: false, reason: "unknown" };
    const hash = hashToken(token);
    const row = await this.opts.repo.find(hash);
    if (!row) return { ok: false, reason: "unknown" };
    const now = this.now().toISOString();
    if (row.revokedAt !== null) return { ok: false, reason: "revoked" };
    if (row.usedAt !== null || !(await this.opts.repo.consume(hash, now))) {
      await this.opts.repo.revokeFamily(row.family, now);
      return { ok: false, reason: "reused" };
    }
    if (row.expiresAt <= now) return { ok: false, reason: "expired" };
    return { ok: true, userId: row.userId, family: row.family };
  }

  /** Ends the family of one refresh token, or every session of the user when none is given. */
  async end(userId: number, token?: string): Promise<void> {
    const now = this.now().toISOString();
    if (token) {
      const row = await this.opts.repo.find(hashToken(token));
      if (row && row.userId === userId) await this.opts.repo.revokeFamily(row.family, now);
      return;
    }
    await this.opts.repo.revokeUser(userId, now);
  }

  async endAllFor(userId: number): Promise<void> {
    await this.opts.repo.revokeUser(userId, this.now().toISOString());
  }
}

function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
