import { hash, randomBytes } from "node:crypto";
import {
  calculateJwkThumbprint,
  compactVerify,
  type CryptoKey,
  decodeProtectedHeader,
  errors as joseErrors,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  SignJWT,
} from "jose";
import { LRUCache } from "lru-cache";
import { type Environment, isEnvironment } from "../keys/format.js";

/**
 * OAuth 2.0 JWT access tokens (RFC 9068) as Keygate issues and verifies them: ES256, header
 * `typ: "at+jwt"` and the `kid` of the signing key, whose public half is published as a JWK
 * Set so other services can verify tokens offline. Signing keys rotate: one signs for
 * `rotateAfterS`, then a new one takes over and the old one stays published until every token
 * it signed has expired. No HTTP framework and no SQL here: the keys are kept through a port,
 * and their private halves are sealed and opened by functions the caller passes.
 */

/** A signing key as the store keeps it. */
export type StoredSigningKey = {
  /** The RFC 7638 thumbprint of the public key, which tokens name in their header. */
  kid: string;
  /** The public key (kty, crv, x, y), published as is. */
  publicJwk: JWK;
  /** The private JWK's JSON text, as `seal` returned it (encrypted at rest when a master key is set). */
  privateJwk: string;
  /** When the key was made, in ms. */
  createdAt: number;
  /** When the key stopped signing, in ms; null while it signs. */
  retiredAt: number | null;
};

/** Where the signing keys live; shared by every instance of one Keygate. */
export interface SigningKeyStore {
  list(): Promise<StoredSigningKey[]>;
  insert(key: StoredSigningKey): Promise<void>;
  /** Marks the key as no longer signing, from `at` (ms). */
  retire(kid: string, at: number): Promise<void>;
  remove(kid: string): Promise<void>;
}

export type TokenAuthorityOptions = {
  store: SigningKeyStore;
  /** The clock, in ms: issue and expiry times, key ages. */
  clock?: () => number;
  /** Lifetime of an access token, in seconds. */
  ttlS: number;
  /** How long one key signs before a new one is made, in seconds (default 30 days). */
  rotateAfterS?: number;
  /**
   * How long `issue` trusts the keys it read before reading the store again, in seconds
   * (default 60). Another instance may have rotated meanwhile and go on with the new key,
   * while this one still signs with the old: a retired key therefore stays published for
   * `ttlS + refreshS` after its retirement, not just `ttlS`.
   */
  refreshS?: number;
  /**
   * Fewest ms between two reads of the store prompted by tokens naming an unknown key
   * (default 1000), so a flood of made-up `kid`s cannot hammer the store. Tokens that arrive
   * meanwhile wait for the next read and share it.
   */
  reloadIntervalMs?: number;
  /** Verified tokens held, by hash, until they expire (default 50 000; a few hundred bytes each). */
  cacheMax?: number;
  /** Turns a private JWK's JSON into what the store keeps; identity when there is no master key. */
  seal?: (privateJwkJson: string, kid: string) => string;
  /** The inverse of `seal`: the private JWK's JSON from what the store keeps. */
  open?: (stored: string, kid: string) => string;
};

export type IssueRequest = {
  /** `iss`: the issuer identifier, exactly as the metadata document states it. */
  issuer: string;
  /** `aud`: the resource the token is for. */
  audience: string | string[];
  /** `sub`: for a client-credentials token, the client (RFC 9068 §2.2). */
  subject: string;
  /** `client_id`: the key's prefix. */
  clientId: string;
  /** The numeric id of the API key the token was exchanged for (claim `kgk`). */
  keyId: number;
  /** The granted scope tokens; written space-separated in `scope`. */
  scope: readonly string[];
  /** The key's environment (claim `env`). */
  environment: Environment;
};

export type IssuedToken = {
  token: string;
  /** Seconds until it expires (the token response's `expires_in`). */
  expiresIn: number;
  jti: string;
  /** Expiry, in unix seconds. */
  exp: number;
};

/** The claims of a Keygate access token. */
export type AccessTokenClaims = {
  iss: string;
  sub: string;
  aud: string | readonly string[];
  client_id: string;
  iat: number;
  exp: number;
  jti: string;
  /** Space-separated scope tokens; empty when none was granted. */
  scope: string;
  /** The numeric id of the API key the token came from. */
  kgk: number;
  env: Environment;
};

export type TokenCode = "INVALID_TOKEN" | "TOKEN_EXPIRED";

export type TokenVerdict =
  | {
      ok: true;
      claims: Readonly<AccessTokenClaims>;
      /** `claims.scope`, split. */
      scopes: readonly string[];
    }
  | {
      ok: false;
      code: TokenCode;
      reason: string;
      /** Set when the bearer value is no access token at all (not a JWT, or not `at+jwt` ES256). */
      notAccessToken?: true;
    };

/** What a token must also say, checked on every verification (RFC 9068 §4). */
export type TokenExpectations = {
  /** The `iss` it must carry. */
  issuer?: string;
  /** A value its `aud` must be or contain. */
  audience?: string;
};

/** A public key as the JWK Set publishes it. */
export type PublishedJwk = JWK & { kid: string; alg: "ES256"; use: "sig" };

/** RFC 8414 authorization server metadata. */
export type AuthorizationServerMetadata = {
  issuer: string;
  token_endpoint: string;
  jwks_uri: string;
  introspection_endpoint: string;
  revocation_endpoint: string;
  grant_types_supported: string[];
  response_types_supported: string[];
  token_endpoint_auth_methods_supported: string[];
  introspection_endpoint_auth_methods_supported: string[];
  revocation_endpoint_auth_methods_supported: string[];
  scopes_supported: string[];
};

const ALG = "ES256";
const TYP = "at+jwt";
/** Where a client exchanges its key, under the issuer. */
export const TOKEN_PATH = "/api/v1/external/oauth/token";
export const INTROSPECTION_PATH = "/api/v1/external/oauth/introspect";
export const REVOCATION_PATH = "/api/v1/external/oauth/revoke";
export const JWKS_PATH = "/.well-known/jwks.json";
export const METADATA_PATH = "/.well-known/oauth-authorization-server";

/** Longer than any token Keygate issues; anything longer is refused before it is read. */
const MAX_TOKEN_LENGTH = 8192;
/** A header of a few fields; a longer one is not Keygate's. */
const MAX_HEADER_LENGTH = 512;
/** An ES256 signature is 64 bytes: 86 base64url characters. */
const ES256_SIGNATURE_LENGTH = 86;
const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]+$/;
/** RFC 6749 §3.3 scope-token: printable ASCII but space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

const DAY_S = 24 * 3600;
const utf8 = new TextDecoder();

/**
 * Three non-empty base64url parts joined by dots and no longer than any Keygate token: what
 * a bearer value must look like before it is worth reading. A cheap test, no decoding.
 */
export function isJwtShaped(value: string): boolean {
  return value.length <= MAX_TOKEN_LENGTH && JWT_SHAPE.test(value);
}

/** A key as this instance holds it: the stored row and its imported halves. */
type HeldKey = {
  stored: StoredSigningKey;
  publicKey: CryptoKey;
  /** Imported on first use: instances that only verify never open a private key. */
  privateKey: Promise<CryptoKey> | null;
};

/** One read of the store: when it began (monotonic ms) and how it ended. */
type Load = { startedAt: number; done: Promise<void>; failed: boolean };

const invalid = (reason: string): TokenVerdict => ({ ok: false, code: "INVALID_TOKEN", reason });
/** Refuses a bearer value that is not an access token in kind, as opposed to a bad one of ours. */
const notAccessToken = (reason: string): TokenVerdict => ({
  ok: false,
  code: "INVALID_TOKEN",
  reason,
  notAccessToken: true,
});

const defaultSeal = (json: string) => json;

/**
 * Issues and verifies Keygate's access tokens, and publishes the keys that sign them.
 *
 * `verify` is on the hot path: a token once verified is remembered by its SHA-256 until it
 * expires, and verifying it again answers synchronously (a plain verdict, not a Promise),
 * still checking its expiry against the clock. Only verified tokens are remembered; a refused
 * one costs at most one signature check, after cheap checks of its shape and header.
 *
 * Several instances may share one store: a key made by one is read by the others when a
 * token names it, and `issue` reads the store before making a key, so one process makes at
 * most one key at a time and rarely races another.
 */
export class TokenAuthority {
  private readonly store: SigningKeyStore;
  private readonly clock: () => number;
  readonly ttlS: number;
  private readonly rotateAfterMs: number;
  private readonly refreshMs: number;
  private readonly reloadIntervalMs: number;
  private readonly seal: (privateJwkJson: string, kid: string) => string;
  private readonly open: (stored: string, kid: string) => string;
  private readonly verified: LRUCache<string, TokenVerdict & { ok: true }>;

  private keys = new Map<string, HeldKey>();
  /** Keys made here that no finished read of the store has returned yet: kept across reads. */
  private readonly unconfirmed = new Map<string, HeldKey>();
  /** Whether the store has been read once, successfully. */
  private loaded = false;
  /** The latest read of the store, queued, under way or done. Reads run one after another. */
  private lastLoad: Load | null = null;
  /** A read waiting for the reload interval to pass, shared by everyone who asked meanwhile. */
  private scheduled: Promise<void> | null = null;
  /** A key being made, shared by every `issue` that needs it. */
  private generating: { force: boolean; promise: Promise<HeldKey> } | null = null;

  constructor(opts: TokenAuthorityOptions) {
    if (!Number.isSafeInteger(opts.ttlS) || opts.ttlS <= 0) {
      throw new Error(
        `token lifetime must be a positive whole number of seconds, not ${opts.ttlS}`,
      );
    }
    const rotateAfterS = opts.rotateAfterS ?? 30 * DAY_S;
    if (!(rotateAfterS > 0)) throw new Error("rotateAfterS must be positive");
    this.store = opts.store;
    this.clock = opts.clock ?? Date.now;
    this.ttlS = opts.ttlS;
    this.rotateAfterMs = rotateAfterS * 1000;
    this.refreshMs = (opts.refreshS ?? 60) * 1000;
    this.reloadIntervalMs = opts.reloadIntervalMs ?? 1000;
    this.seal = opts.seal ?? defaultSeal;
    this.open = opts.open ?? defaultSeal;
    this.verified = new LRUCache({ max: opts.cacheMax ?? 50_000 });
  }

  /** Signs an access token for `req` with the current key, making one first when due. */
  async issue(req: IssueRequest): Promise<IssuedToken> {
    checkRequest(req);
    const key = await this.signingKey();
    const signer = await this.privateKeyOf(key);
    const iat = Math.floor(this.clock() / 1000);
    const exp = iat + this.ttlS;
    const jti = randomBytes(16).toString("base64url");
    const token = await new SignJWT({
      client_id: req.clientId,
      scope: [...new Set(req.scope)].join(" "),
      kgk: req.keyId,
      env: req.environment,
    })
      .setProtectedHeader({ alg: ALG, typ: TYP, kid: key.stored.kid })
      .setIssuer(req.issuer)
      .setSubject(req.subject)
      .setAudience(req.audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(signer);
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new Error(
        `the access token would be ${token.length} characters, more than the ${MAX_TOKEN_LENGTH} verify accepts`,
      );
    }
    return { token, expiresIn: this.ttlS, jti, exp };
  }

  /**
   * The verdict on a bearer token. Synchronous for a token verified before (and for one
   * refused by the cheap checks); a Promise when its signature must be checked, which
   * rejects only when the store cannot be read.
   */
  verify(token: string, expect?: TokenExpectations): TokenVerdict | Promise<TokenVerdict> {
    if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) {
      return invalid("the token is longer than any access token this Keygate issues");
    }
    if (!isJwtShaped(token)) {
      return notAccessToken(
        "not a JWT access token: expected three base64url parts joined by dots",
      );
    }
    const digest = hash("sha256", token, "base64url");
    const hit = this.verified.get(digest);
    if (hit !== undefined) return this.judge(hit, expect);
    return this.verifyAnew(token, digest, expect);
  }

  /** Forgets a verified token, so the next verification checks its signature again. */
  forget(token: string): void {
    this.verified.delete(hash("sha256", token, "base64url"));
  }

  /**
   * The JWK Set (RFC 7517) to publish: every key that signs, and every retired key while a
   * token it signed may still be valid. Newest first.
   */
  async jwks(): Promise<{ keys: PublishedJwk[] }> {
    await this.ready();
    await this.reloadSince(performance.now() - this.reloadIntervalMs);
    const now = this.clock();
    const keys = [...this.keys.values()]
      .map((k) => k.stored)
      .filter((k) => !this.past(k, now))
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((k) => publish(k));
    return { keys };
  }

  /**
   * Makes a new signing key now and retires the current one; answers the new key's kid. A
   * rotation already under way is shared; a routine key generation under way is waited out.
   */
  async rotate(): Promise<string> {
    while (this.generating !== null && !this.generating.force) {
      await this.generating.promise.catch(() => {});
    }
    const key = await this.generate(true);
    return key.stored.kid;
  }

  /**
   * Removes from the store every retired key no valid token can name any more; answers their
   * kids. Keys that still sign are never removed.
   */
  async prune(): Promise<string[]> {
    await this.loadNow();
    const now = this.clock();
    const gone = [...this.keys.values()].map((k) => k.stored).filter((k) => this.past(k, now));
    for (const k of gone) {
      await this.store.remove(k.kid);
      this.keys.delete(k.kid);
    }
    return gone.map((k) => k.kid);
  }

  /**
   * RFC 8414 authorization server metadata for `issuer` (no trailing slash expected; one is
   * ignored when building the endpoints). Keygate has no authorization endpoint, so
   * `response_types_supported`, which §2 requires of every server, is empty.
   */
  metadata(issuer: string, scopesSupported: readonly string[]): AuthorizationServerMetadata {
    let base = issuer;
    while (base.endsWith("/")) base = base.slice(0, -1);
    const clientAuth = ["client_secret_basic", "client_secret_post"];
    return {
      issuer,
      token_endpoint: base + TOKEN_PATH,
      jwks_uri: base + JWKS_PATH,
      introspection_endpoint: base + INTROSPECTION_PATH,
      revocation_endpoint: base + REVOCATION_PATH,
      grant_types_supported: ["client_credentials"],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: [...clientAuth],
      introspection_endpoint_auth_methods_supported: [...clientAuth],
      revocation_endpoint_auth_methods_supported: [...clientAuth],
      scopes_supported: [...scopesSupported],
    };
  }

  /** Verified tokens currently remembered. */
  get cached(): number {
    return this.verified.size;
  }

  // --- verification ---

  private judge(verdict: TokenVerdict & { ok: true }, expect?: TokenExpectations): TokenVerdict {
    const { claims } = verdict;
    if (claims.exp * 1000 <= this.clock()) {
      return {
        ok: false,
        code: "TOKEN_EXPIRED",
        reason: `the token expired at ${new Date(claims.exp * 1000).toISOString()}; exchange the key for a new one at POST ${TOKEN_PATH}`,
      };
    }
    if (expect?.issuer !== undefined && claims.iss !== expect.issuer) {
      return invalid(
        `the token was issued by ${JSON.stringify(claims.iss)}, not by this Keygate (${JSON.stringify(expect.issuer)})`,
      );
    }
    if (expect?.audience !== undefined) {
      const aud = claims.aud;
      if (typeof aud === "string" ? aud !== expect.audience : !aud.includes(expect.audience)) {
        return invalid(
          `the token is meant for ${JSON.stringify(claims.aud)}, not for ${JSON.stringify(expect.audience)}`,
        );
      }
    }
    return verdict;
  }

  private async verifyAnew(
    token: string,
    digest: string,
    expect?: TokenExpectations,
  ): Promise<TokenVerdict> {
    const arrived = performance.now();
    const headerPart = token.slice(0, token.indexOf("."));
    const signaturePart = token.slice(token.lastIndexOf(".") + 1);
    if (headerPart.length > MAX_HEADER_LENGTH) return invalid("the token's header is too long");
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return notAccessToken("the token's header is not base64url-encoded JSON");
    }
    const typ = typeof header.typ === "string" ? header.typ.toLowerCase() : null;
    if (typ !== TYP && typ !== `application/${TYP}`) {
      return notAccessToken(
        `not a JWT access token (typ must be ${TYP}, this one has ${typ === null ? "none" : JSON.stringify(header.typ)})`,
      );
    }
    if (header.alg !== ALG) {
      return notAccessToken(
        `the token is signed with ${JSON.stringify(header.alg ?? "no algorithm")}; Keygate access tokens use ${ALG}`,
      );
    }
    if (signaturePart.length !== ES256_SIGNATURE_LENGTH) {
      return invalid(`the token's signature is not an ${ALG} signature (64 bytes)`);
    }
    const kid = header.kid;
    if (typeof kid !== "string" || kid === "") {
      return invalid("the token's header names no signing key (kid)");
    }

    await this.ready();
    let key = this.keys.get(kid);
    if (key === undefined) {
      // Another instance may have made this key since the store was last read: decide after
      // a read that began once this token was in hand.
      await this.reloadSince(arrived);
      key = this.keys.get(kid);
    }
    if (key === undefined) {
      return invalid(
        `the token names a signing key (kid ${JSON.stringify(kid.slice(0, 64))}) this Keygate does not publish: it was not issued here, or long ago`,
      );
    }

    let payload: Uint8Array;
    try {
      ({ payload } = await compactVerify(token, key.publicKey, { algorithms: [ALG] }));
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
        return invalid("the token's signature does not match any key this Keygate publishes");
      }
      if (err instanceof joseErrors.JOSEError)
        return invalid(`the token cannot be read: ${err.message}`);
      throw err;
    }
    const claims = readClaims(payload);
    if (typeof claims === "string") return invalid(claims);

    const verdict = Object.freeze({
      ok: true as const,
      claims,
      scopes: Object.freeze(claims.scope.split(" ").filter((s) => s !== "")),
    });
    const judged = this.judge(verdict, expect);
    const ttl = claims.exp * 1000 - this.clock();
    // Remembered even when this caller's expectations refuse it: the signature is sound, and
    // each hit checks expiry and expectations again.
    if (ttl > 0) this.verified.set(digest, verdict, { ttl: Math.ceil(ttl) });
    return judged;
  }

  // --- keys ---

  /** Past use: retired long enough ago that every token it signed has expired. */
  private past(key: StoredSigningKey, now: number): boolean {
    return key.retiredAt !== null && key.retiredAt + this.ttlS * 1000 + this.refreshMs <= now;
  }

  /** The newest key that still signs, among those read. */
  private current(): HeldKey | null {
    let best: HeldKey | null = null;
    for (const k of this.keys.values()) {
      if (k.stored.retiredAt !== null) continue;
      if (best === null || k.stored.createdAt > best.stored.createdAt) best = k;
    }
    return best;
  }

  private fresh(key: HeldKey | null): key is HeldKey {
    return key !== null && this.clock() - key.stored.createdAt < this.rotateAfterMs;
  }

  private async signingKey(): Promise<HeldKey> {
    await this.ready();
    await this.reloadSince(performance.now() - this.refreshMs);
    const key = this.current();
    if (this.fresh(key)) return key;
    return this.generate(false);
  }

  /**
   * Makes a signing key, once per process at a time: everyone asking meanwhile shares it.
   * The store is read first, in case another instance made one (unless `force`).
   */
  private generate(force: boolean): Promise<HeldKey> {
    if (this.generating) return this.generating.promise;
    const run = (async () => {
      await this.loadNow();
      const existing = this.current();
      if (!force && this.fresh(existing)) return existing;

      const { publicKey, privateKey } = await generateKeyPair(ALG, { extractable: true });
      const publicJwk = await exportJWK(publicKey);
      const privateJwk = await exportJWK(privateKey);
      const kid = await calculateJwkThumbprint(publicJwk, "sha256");
      const now = this.clock();
      const stored: StoredSigningKey = {
        kid,
        publicJwk: { kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x, y: publicJwk.y },
        privateJwk: this.seal(JSON.stringify(privateJwk), kid),
        createdAt: now,
        retiredAt: null,
      };
      await this.store.insert(stored);
      const held: HeldKey = {
        stored,
        publicKey,
        privateKey: importJWK(privateJwk, ALG, { extractable: false }) as Promise<CryptoKey>,
      };
      this.unconfirmed.set(kid, held);
      this.keys.set(kid, held);
      // The new key is stored before the old ones stop signing: there is never none.
      for (const old of this.keys.values()) {
        if (old === held || old.stored.retiredAt !== null) continue;
        await this.store.retire(old.stored.kid, now);
        old.stored = { ...old.stored, retiredAt: now };
      }
      return held;
    })();
    this.generating = { force, promise: run };
    const clear = () => {
      if (this.generating?.promise === run) this.generating = null;
    };
    run.then(clear, clear);
    return run;
  }

  private privateKeyOf(key: HeldKey): Promise<CryptoKey> {
    if (key.privateKey === null) {
      const { kid } = key.stored;
      const pending = (async () => {
        let jwk: JWK;
        try {
          jwk = JSON.parse(this.open(key.stored.privateJwk, kid)) as JWK;
        } catch (err) {
          throw new Error(
            `signing key ${kid} does not open (${err instanceof Error ? err.message : String(err)}); was it sealed under another master key?`,
            { cause: err },
          );
        }
        return (await importJWK(jwk, ALG, { extractable: false })) as CryptoKey;
      })();
      // A failure is not kept: the next issue tries again.
      pending.catch(() => {
        if (key.privateKey === pending) key.privateKey = null;
      });
      key.privateKey = pending;
    }
    return key.privateKey;
  }

  /** Resolves once the store has been read successfully at least once. */
  private async ready(): Promise<void> {
    if (this.loaded) return;
    const last = this.lastLoad;
    // Concurrent first callers share the first read; after a failed one, the next caller retries.
    await (last !== null && !last.failed ? last.done : this.startLoad().done);
  }

  /** Reads the store anew, after any read under way, regardless of the reload interval. */
  private loadNow(): Promise<void> {
    return this.startLoad().done;
  }

  /**
   * Resolves once a read of the store that began at or after `since` (monotonic ms) has
   * finished. Reads are at least `reloadIntervalMs` apart; those asking meanwhile share the
   * next one.
   */
  private reloadSince(since: number): Promise<void> {
    const last = this.lastLoad;
    if (last !== null && !last.failed && last.startedAt >= since) return last.done;
    if (this.scheduled) return this.scheduled;
    const wait = last === null ? 0 : last.startedAt + this.reloadIntervalMs - performance.now();
    if (wait <= 0) return this.startLoad().done;
    const next: Promise<void> = new Promise((resolve) => setTimeout(resolve, wait)).then(() => {
      if (this.scheduled === next) this.scheduled = null;
      return this.startLoad().done;
    });
    this.scheduled = next;
    return next;
  }

  /** Queues a read of the store behind the one before it, so reads land in order. */
  private startLoad(): Load {
    const before = this.lastLoad;
    const load: Load = { startedAt: performance.now(), done: Promise.resolve(), failed: false };
    load.done = (async () => {
      if (before !== null) await before.done.catch(() => {});
      let rows: StoredSigningKey[];
      try {
        rows = await this.store.list();
      } catch (err) {
        load.failed = true;
        throw err;
      }
      const keys = new Map<string, HeldKey>();
      for (const stored of rows) {
        const held = this.unconfirmed.get(stored.kid) ?? this.keys.get(stored.kid);
        this.unconfirmed.delete(stored.kid);
        if (held) {
          held.stored = stored;
          keys.set(stored.kid, held);
        } else {
          // A row that is not an ES256 public key verifies nothing: tokens naming it are refused
          // as naming an unknown key, and the other keys go on working.
          const publicKey = await importJWK(stored.publicJwk, ALG).catch(() => null);
          if (publicKey instanceof Uint8Array || publicKey === null) continue;
          keys.set(stored.kid, { stored, publicKey, privateKey: null });
        }
      }
      // A key made here while the read was under way may be missing from it.
      for (const [kid, held] of this.unconfirmed) keys.set(kid, held);
      this.keys = keys;
      this.loaded = true;
    })();
    this.lastLoad = load;
    return load;
  }
}

function checkRequest(req: IssueRequest): void {
  if (!Number.isSafeInteger(req.keyId) || req.keyId <= 0) {
    throw new Error(`keyId must be a positive integer, not ${req.keyId}`);
  }
  if (!isEnvironment(req.environment)) throw new Error(`unknown environment ${req.environment}`);
  for (const s of req.scope) {
    if (!SCOPE_TOKEN.test(s)) throw new Error(`${JSON.stringify(s)} is not a scope token`);
  }
  if (req.issuer === "" || req.subject === "" || req.clientId === "") {
    throw new Error("issuer, subject and clientId must not be empty");
  }
  const audiences = typeof req.audience === "string" ? [req.audience] : req.audience;
  if (audiences.length === 0 || audiences.some((a) => a === "")) {
    throw new Error("audience must name at least one resource");
  }
}

/** The claims of a signed payload, or why they are not a Keygate access token's. */
function readClaims(payload: Uint8Array): AccessTokenClaims | string {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(payload));
  } catch {
    return "the token's payload is not JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "the token's payload is not a set of claims";
  }
  const c = value as Record<string, unknown>;
  const missing: string[] = [];
  for (const name of ["iss", "sub", "client_id", "jti", "scope"] as const) {
    if (typeof c[name] !== "string") missing.push(name);
  }
  for (const name of ["iat", "exp"] as const) {
    if (typeof c[name] !== "number" || !Number.isFinite(c[name])) missing.push(name);
  }
  const aud = c.aud;
  if (!(
    typeof aud === "string" ||
    (Array.isArray(aud) && aud.every((a) => typeof a === "string"))
  )) {
    missing.push("aud");
  }
  if (!Number.isSafeInteger(c.kgk)) missing.push("kgk");
  if (!isEnvironment(c.env)) missing.push("env");
  if (missing.length > 0) {
    return `the token lacks the claims of a Keygate access token (${missing.join(", ")})`;
  }
  return Object.freeze({
    iss: c.iss as string,
    sub: c.sub as string,
    aud: typeof aud === "string" ? aud : Object.freeze([...(aud as string[])]),
    client_id: c.client_id as string,
    iat: c.iat as number,
    exp: c.exp as number,
    jti: c.jti as string,
    scope: c.scope as string,
    kgk: c.kgk as number,
    env: c.env as Environment,
  });
}

function publish(key: StoredSigningKey): PublishedJwk {
  const { kty, crv, x, y } = key.publicJwk;
  return { kty, crv, x, y, kid: key.kid, alg: ALG, use: "sig" };
}
