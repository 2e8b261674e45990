import type { components } from "./api-types.js";

/**
 * The access-token cache of token exchange (OAuth 2.0 client credentials, RFC 6749 §4.4):
 * one token at a time, fetched on first use, fetched again shortly before `expires_in` runs
 * out or when the server refuses it. Callers that need a token while one is being fetched
 * share that fetch.
 */

/** The token endpoint's answer (RFC 6749 §5.1), as the OpenAPI document describes it. */
export type AccessToken = components["schemas"]["TokenResponse"];

export class TokenCache {
  private current: { value: string; refreshAt: number } | null = null;
  private pending: Promise<string> | null = null;

  constructor(
    private readonly exchange: () => Promise<AccessToken>,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** A token valid for a while yet: the cached one, or a new one. */
  async get(): Promise<string> {
    if (this.current && this.now() < this.current.refreshAt) return this.current.value;
    this.pending ??= this.fetch().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  /** Forgets `value` (refused by the server), unless a newer token has replaced it already. */
  invalidate(value: string): void {
    if (this.current?.value === value) this.current = null;
  }

  private async fetch(): Promise<string> {
    const started = this.now();
    const token = await this.exchange();
    // Refresh a tenth of the lifetime (at most a minute) early, counted from when the request
    // was sent, so a token is never used in its last moments or after the server let it go.
    const lifetimeMs = Math.max(0, token.expires_in) * 1000;
    const earlyMs = Math.min(60_000, lifetimeMs / 10);
    this.current = { value: token.access_token, refreshAt: started + lifetimeMs - earlyMs };
    return token.access_token;
  }
}
