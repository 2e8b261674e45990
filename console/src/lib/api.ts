/**
 * The console's client for the `/api` surface.
 *
 * The access token lives only in this module's memory. The refresh token is an HttpOnly
 * cookie the page cannot read: `POST /api/auth/refresh` with no body trades it for a new
 * access token (and a rotated cookie). The client refreshes shortly before the access token
 * expires, and once more when a call answers 401, then repeats the call.
 */

import { currentEnvironment, ENVIRONMENT_HEADER, type Environment } from "./environment";
import type { Me } from "./types";

export type FieldProblem = { field: string; message: string };

/** An error answered by the server, carrying its own message, code and field problems. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: FieldProblem[] = [],
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export type User = { id: number; username: string; role: "admin" | "reseller" | string };

export type Session = { user: User; accessToken: string; expiresAt: number };

type TokenData = {
  access_token: string;
  expires_in: number;
  token_type: string;
  user: User;
};

export type Envelope<T> = {
  success: true;
  data: T;
  meta?: { page: number; per_page: number; total: number };
  key?: string;
  /**
   * A key's signing secret (`pks_live_…` / `pks_test_…`), shown this once: when a key is
   * minted or rolled with request signing on, or when an edit turns signing on.
   */
  signing_secret?: string;
  message?: string;
  /** The HTTP status (e.g. 200 rather than 201 when a transaction's reference was seen before). */
  status?: number;
};

/** The second step of a sign-in with two-factor: one of the two. */
export type SecondFactor = { otp: string } | { recovery_code: string };

/** Why the user is looking at the sign-in form again. */
export type SessionEnd = { reason: "expired" | "signed-out" | "elsewhere"; message: string };

export type ApiClientOptions = {
  fetch?: typeof fetch;
  now?: () => number;
  /** Refresh this many seconds before the access token expires. */
  refreshLeadS?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Runs `fn` while holding a lock shared by every tab, so two tabs never spend one cookie. */
  withLock?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** The environment every request names in `Keygate-Environment` (the Test data switch). */
  environment?: () => Environment;
};

/** For one call: another environment than the switch's (e.g. the other side's key count). */
export type CallOptions = { environment?: Environment };

type Listener = (session: Session | null, end: SessionEnd | null) => void;

const NETWORK_MESSAGE =
  "Keygate did not answer. Check that the server is running and your connection, then try again.";

function browserLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (!locks) return fn();
  return locks.request("keygate-refresh", fn) as Promise<T>;
}

export class ApiClient {
  private session: Session | null = null;
  private refreshing: Promise<Session | null> | null = null;
  private timer: unknown = null;
  private listeners = new Set<Listener>();
  private readonly f: typeof fetch;
  private readonly now: () => number;
  private readonly lead: number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private readonly withLock: <T>(fn: () => Promise<T>) => Promise<T>;
  private readonly environment: () => Environment;

  constructor(opts: ApiClientOptions = {}) {
    this.f = opts.fetch ?? ((...args) => fetch(...args));
    this.now = opts.now ?? (() => Date.now());
    this.lead = opts.refreshLeadS ?? 60;
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
    this.withLock = opts.withLock ?? browserLock;
    this.environment = opts.environment ?? (() => "live");
  }

  get current(): Session | null {
    return this.session;
  }

  /** Called with the new session (or null and the reason) whenever it changes. */
  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private set(session: Session | null, end: SessionEnd | null = null): void {
    this.session = session;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    if (session) {
      const inMs = Math.max(5_000, session.expiresAt - this.now() - this.lead * 1000);
      this.timer = this.setTimer(() => void this.refresh().catch(() => undefined), inMs);
    }
    for (const fn of this.listeners) fn(session, end);
  }

  private accept(data: TokenData): Session {
    const session = {
      user: data.user,
      accessToken: data.access_token,
      expiresAt: this.now() + data.expires_in * 1000,
    };
    this.set(session);
    return session;
  }

  /**
   * Signs in. For an account with two-factor sign-in the server answers 401
   * `TWO_FACTOR_REQUIRED` to the password alone; send it again with `second` (the code from
   * the authenticator app, or a recovery code).
   */
  async login(username: string, password: string, second?: SecondFactor): Promise<Session> {
    const res = await this.raw("POST", "/api/auth/login", {
      username,
      password,
      ...second,
      session: "cookie",
    });
    return this.accept(res.data as TokenData);
  }

  /**
   * Trades the refresh cookie for a new access token. Resolves null when there is no
   * session to restore (no cookie, or it was spent or ended); concurrent calls share one
   * request. A network failure rejects and leaves the session as it was.
   */
  refresh(): Promise<Session | null> {
    if (!this.refreshing) {
      const had = this.session !== null;
      this.refreshing = this.withLock(async () => {
        try {
          const res = await this.raw("POST", "/api/auth/refresh");
          return this.accept(res.data as TokenData);
        } catch (err) {
          if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
            this.set(
              null,
              had
                ? {
                    reason: "expired",
                    message: `Your session has ended: ${err.message.replace(/\.?$/, ".")}`,
                  }
                : null,
            );
            return null;
          }
          throw err;
        }
      }).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** Ends the session on the server and clears the cookie; always signs out locally. */
  async logout(): Promise<void> {
    try {
      // `call` refreshes first if the access token has expired, so the server always
      // learns of the sign-out and ends the refresh cookie's session.
      if (this.session) await this.call("POST", "/api/auth/logout");
    } catch {
      // Signed out locally whatever the server says; the cookie expires on its own.
    } finally {
      this.set(null, { reason: "signed-out", message: "You are signed out." });
    }
  }

  /** Forgets the session without calling the server (another tab signed out). */
  drop(end: SessionEnd): void {
    if (this.session) this.set(null, end);
  }

  /** Refreshes now if the access token is missing or close to expiry (e.g. after sleep). */
  async freshen(): Promise<void> {
    const s = this.session;
    if (s && s.expiresAt - this.now() < this.lead * 1000) await this.refresh();
  }

  /** The signed-in user, what it may do and the server's defaults (`GET /api/auth/me`). */
  async me(): Promise<Me> {
    return (await this.get<Me>("/api/auth/me")).data;
  }

  get<T>(path: string, opts?: CallOptions): Promise<Envelope<T>> {
    return this.call<T>("GET", path, undefined, opts);
  }
  post<T>(path: string, body?: unknown): Promise<Envelope<T>> {
    return this.call<T>("POST", path, body);
  }
  put<T>(path: string, body?: unknown): Promise<Envelope<T>> {
    return this.call<T>("PUT", path, body);
  }
  del<T>(path: string): Promise<Envelope<T>> {
    return this.call<T>("DELETE", path);
  }

  /** An authenticated call: on 401, refresh once and repeat it. */
  async call<T>(
    method: string,
    path: string,
    body?: unknown,
    opts: CallOptions = {},
  ): Promise<Envelope<T>> {
    if (!this.session) await this.refresh();
    try {
      return (await this.raw(method, path, body, true, opts.environment)) as Envelope<T>;
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      const renewed = await this.refresh();
      if (!renewed)
        throw new ApiError(401, "SESSION_ENDED", "Your session has ended; sign in again.");
      return (await this.raw(method, path, body, true, opts.environment)) as Envelope<T>;
    }
  }

  /** An authenticated GET of a file (the call log's CSV): its bytes, or the server's error. */
  async download(path: string): Promise<Blob> {
    if (!this.session) await this.refresh();
    const once = async () => {
      const headers: Record<string, string> = { [ENVIRONMENT_HEADER]: this.environment() };
      if (this.session) headers.authorization = `Bearer ${this.session.accessToken}`;
      let res: Response;
      try {
        res = await this.f(path, { headers, credentials: "same-origin", cache: "no-store" });
      } catch {
        throw new ApiError(0, "NETWORK_ERROR", NETWORK_MESSAGE);
      }
      if (res.ok) return res.blob();
      throw errorOf(res, await res.text());
    };
    try {
      return await once();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      if (!(await this.refresh()))
        throw new ApiError(401, "SESSION_ENDED", "Your session has ended; sign in again.");
      return once();
    }
  }

  private async raw(
    method: string,
    path: string,
    body?: unknown,
    bearer = false,
    environment: Environment = this.environment(),
  ): Promise<Envelope<unknown>> {
    const headers: Record<string, string> = {
      accept: "application/json",
      [ENVIRONMENT_HEADER]: environment,
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (bearer && this.session) headers.authorization = `Bearer ${this.session.accessToken}`;
    let res: Response;
    try {
      res = await this.f(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "NETWORK_ERROR", NETWORK_MESSAGE);
    }
    const text = await res.text();
    const env = envelopeOf(text);
    if (!res.ok || !env || env.success === false) throw errorOf(res, text);
    return { ...(env as Envelope<unknown>), status: res.status };
  }
}

type AnyEnvelope = {
  success?: boolean;
  message?: string;
  code?: string;
  details?: FieldProblem[];
  error?: { code?: string; message?: string; details?: FieldProblem[] };
};

function envelopeOf(text: string): AnyEnvelope | null {
  try {
    return text ? (JSON.parse(text) as AnyEnvelope) : null;
  } catch {
    return null;
  }
}

/** The error an answer carries, in either surface's envelope, or one naming its status. */
function errorOf(res: Response, text: string): ApiError {
  const env = envelopeOf(text);
  const message =
    env?.message ??
    env?.error?.message ??
    `Keygate answered ${res.status} ${res.statusText || ""}`.trim();
  const code = env?.code ?? env?.error?.code ?? `HTTP_${res.status}`;
  return new ApiError(res.status, code, message, env?.details ?? env?.error?.details ?? []);
}

/** The console's one client; its requests follow the Test data switch. */
export const api = new ApiClient({ environment: currentEnvironment });

/** The message to show for anything thrown by a call. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Field problems from a 400, keyed by the form field they belong to (`allowed_ips[2]` → `allowed_ips`). */
export function fieldErrors(err: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(err instanceof ApiError)) return out;
  for (const d of err.details) {
    const field = d.field.replace(/\[\d+\]$/, "").split(".")[0] ?? d.field;
    out[field] = out[field] ? `${out[field]}; ${d.message}` : d.message;
  }
  return out;
}
