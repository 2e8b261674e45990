import { randomBytes } from "node:crypto";
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  generateKeyPair,
  importJWK,
  type JWK,
  jwtVerify,
  SignJWT,
} from "jose";
import { beforeEach, describe, expect, it } from "vitest";
import { openSecret, sealSecret } from "./secrets.js";
import {
  type IssueRequest,
  isJwtShaped,
  type SigningKeyStore,
  type StoredSigningKey,
  TokenAuthority,
  type TokenAuthorityOptions,
  type TokenVerdict,
} from "./tokens.js";

/** The store as a table would keep it: rows copied in and out, and a count of each call. */
class MemoryStore implements SigningKeyStore {
  readonly rows = new Map<string, StoredSigningKey>();
  calls = { list: 0, insert: 0, retire: 0, remove: 0 };

  async list(): Promise<StoredSigningKey[]> {
    this.calls.list++;
    return [...this.rows.values()].map((r) => ({ ...r }));
  }
  async insert(k: StoredSigningKey): Promise<void> {
    this.calls.insert++;
    this.rows.set(k.kid, { ...k });
  }
  async retire(kid: string, at: number): Promise<void> {
    this.calls.retire++;
    const row = this.rows.get(kid);
    if (row) row.retiredAt = at;
  }
  async remove(kid: string): Promise<void> {
    this.calls.remove++;
    this.rows.delete(kid);
  }
}

const ISSUER = "https://keygate.example.com";
const AUDIENCE = "https://keygate.example.com/api/v1/external";
const TTL_S = 3600;
const START = Date.UTC(2025, 0, 1, 12);

const request: IssueRequest = {
  issuer: ISSUER,
  audience: AUDIENCE,
  subject: "pk_live_ab12",
  clientId: "pk_live_ab12",
  keyId: 42,
  scope: ["subscribers:read", "usage:read"],
  environment: "live",
};

let now: number;
let store: MemoryStore;

function authority(opts: Partial<TokenAuthorityOptions> = {}): TokenAuthority {
  return new TokenAuthority({
    store,
    clock: () => now,
    ttlS: TTL_S,
    reloadIntervalMs: 0,
    ...opts,
  });
}

beforeEach(() => {
  now = START;
  store = new MemoryStore();
});

/** Verifies as another service would: jose alone, against the published JWK Set. */
async function verifyOffline(a: TokenAuthority, token: string) {
  const jwks = createLocalJWKSet(await a.jwks());
  return jwtVerify(token, jwks, {
    issuer: ISSUER,
    audience: AUDIENCE,
    typ: "at+jwt",
    algorithms: ["ES256"],
    currentDate: new Date(now),
  });
}

function isPromise(value: unknown): boolean {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const unb64 = (part: string) => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));

describe("issuing", () => {
  it("signs an RFC 9068 access token that verifies offline against the JWK Set", async () => {
    const a = authority();
    const issued = await a.issue(request);
    expect(issued.expiresIn).toBe(TTL_S);
    expect(issued.exp).toBe(START / 1000 + TTL_S);

    const { payload, protectedHeader } = await verifyOffline(a, issued.token);
    const kid = [...store.rows.keys()][0];
    expect(protectedHeader).toEqual({ alg: "ES256", typ: "at+jwt", kid });
    expect(payload).toEqual({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: "pk_live_ab12",
      client_id: "pk_live_ab12",
      iat: START / 1000,
      exp: START / 1000 + TTL_S,
      jti: issued.jti,
      scope: "subscribers:read usage:read",
      kgk: 42,
      env: "live",
    });

    const verdict = await a.verify(issued.token, { issuer: ISSUER, audience: AUDIENCE });
    expect(verdict).toEqual({
      ok: true,
      claims: payload,
      scopes: ["subscribers:read", "usage:read"],
    });
  });

  it("gives each token its own jti, and publishes only public keys", async () => {
    const a = authority();
    const one = await a.issue(request);
    const two = await a.issue({ ...request, scope: [], environment: "test" });
    expect(one.jti).not.toBe(two.jti);
    expect(one.jti).toMatch(/^[\w-]{22}$/);
    expect((await verifyOffline(a, two.token)).payload).toMatchObject({ scope: "", env: "test" });

    const { keys } = await a.jwks();
    expect(keys).toHaveLength(1);
    expect(Object.keys(keys[0]!).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x", "y"]);
    expect(keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
  });

  it("refuses what would make a malformed token", async () => {
    const a = authority();
    await expect(a.issue({ ...request, keyId: 0 })).rejects.toThrow(/keyId/);
    await expect(a.issue({ ...request, scope: ["two words"] })).rejects.toThrow(/scope token/);
    expect(store.calls.insert).toBe(0);
  });

  it("makes one key for many concurrent first issues", async () => {
    const a = authority();
    const tokens = await Promise.all(Array.from({ length: 25 }, () => a.issue(request)));
    expect(store.calls.insert).toBe(1);
    const kids = new Set(tokens.map((t) => decodeProtectedHeader(t.token).kid));
    expect(kids).toEqual(new Set(store.rows.keys()));

    // And one key again when the current one is due for rotation.
    now += 31 * 24 * 3600 * 1000;
    const later = await Promise.all(Array.from({ length: 25 }, () => a.issue(request)));
    expect(store.calls.insert).toBe(2);
    expect(new Set(later.map((t) => decodeProtectedHeader(t.token).kid)).size).toBe(1);
  });

  it("uses a key another instance made rather than making its own", async () => {
    await authority().issue(request);
    const other = authority();
    const issued = await other.issue(request);
    expect(store.calls.insert).toBe(1);
    expect(decodeProtectedHeader(issued.token).kid).toBe([...store.rows.keys()][0]);
  });

  it("keeps private keys sealed in the store and opens them to sign", async () => {
    const kek = randomBytes(32);
    const sealing = {
      seal: (json: string, kid: string) => sealSecret(json, kek, `signing-key:${kid}`),
      open: (stored: string, kid: string) => openSecret(stored, kek, `signing-key:${kid}`),
    };
    await authority(sealing).issue(request);
    const row = [...store.rows.values()][0]!;
    expect(row.privateJwk).toMatch(/^v1\./);
    expect(row.privateJwk).not.toContain('"d"');

    // Another instance opens the stored key to sign with it.
    const other = authority(sealing);
    const issued = await other.issue(request);
    expect(store.calls.insert).toBe(1);
    expect((await verifyOffline(other, issued.token)).protectedHeader.kid).toBe(row.kid);

    // One with another master key cannot, and says so; the key is not replaced.
    const wrong = randomBytes(32);
    const stranger = authority({ open: (s, kid) => openSecret(s, wrong, `signing-key:${kid}`) });
    await expect(stranger.issue(request)).rejects.toThrow(/does not open/);
    expect(store.calls.insert).toBe(1);
  });
});

describe("verifying", () => {
  it("answers a token verified before synchronously, still checking its expiry", async () => {
    const a = authority();
    const { token } = await a.issue(request);
    const first = a.verify(token);
    expect(isPromise(first)).toBe(true);
    expect((await first).ok).toBe(true);
    expect(a.cached).toBe(1);

    const again = a.verify(token);
    expect(isPromise(again)).toBe(false);
    expect((again as TokenVerdict).ok).toBe(true);

    now += TTL_S * 1000;
    const expired = a.verify(token);
    expect(isPromise(expired)).toBe(false);
    expect(expired).toEqual({
      ok: false,
      code: "TOKEN_EXPIRED",
      reason: `the token expired at ${new Date(START + TTL_S * 1000).toISOString()}; exchange the key for a new one at POST /api/v1/external/oauth/token`,
    });
  });

  it("refuses an expired token it never saw with TOKEN_EXPIRED, and does not remember it", async () => {
    const a = authority();
    const { token } = await a.issue(request);
    now += TTL_S * 1000 + 1;
    expect(await a.verify(token)).toMatchObject({ ok: false, code: "TOKEN_EXPIRED" });
    expect(a.cached).toBe(0);
    await expect(verifyOffline(a, token)).rejects.toThrow(/exp/);
  });

  it("refuses a tampered token, every time", async () => {
    const a = authority();
    const { token } = await a.issue(request);
    const [header, payload, signature] = token.split(".") as [string, string, string];

    const raised = `${header}.${b64({ ...unb64(payload), kgk: 7 })}.${signature}`;
    const flipped = `${header}.${payload}.${signature.startsWith("A") ? "B" : "A"}${signature.slice(1)}`;
    for (const bad of [raised, flipped, raised]) {
      expect(await a.verify(bad)).toEqual({
        ok: false,
        code: "INVALID_TOKEN",
        reason: "the token's signature does not match any key this Keygate publishes",
      });
    }
    expect(a.cached).toBe(0);
    await expect(verifyOffline(a, raised)).rejects.toThrow(/signature/);
  });

  it("refuses a token signed by a key it does not publish, even naming one it does", async () => {
    const a = authority();
    const { token } = await a.issue(request);
    const ourKid = decodeProtectedHeader(token).kid as string;
    const { privateKey } = await generateKeyPair("ES256");
    const forge = (kid: string) =>
      new SignJWT(unb64(token.split(".")[1]!))
        .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid })
        .sign(privateKey);

    expect(await a.verify(await forge(ourKid))).toMatchObject({
      code: "INVALID_TOKEN",
      reason: expect.stringMatching(/signature does not match/),
    });
    expect(await a.verify(await forge("made-up"))).toMatchObject({
      code: "INVALID_TOKEN",
      reason: expect.stringMatching(/kid "made-up"\) this Keygate does not publish/),
    });
  });

  it("refuses what is not an ES256 access token with a reason, cheap checks first", async () => {
    const a = authority();
    const { token } = await a.issue(request);
    const [, payload, signature] = token.split(".") as [string, string, string];
    const withHeader = (h: object) => `${b64(h)}.${payload}.${signature}`;
    const kid = decodeProtectedHeader(token).kid;

    const cases: [string, RegExp][] = [
      ["pk_live_0123456789abcdef0123456789abcdef", /three base64url parts/],
      ["a.b", /three base64url parts/],
      ["x".repeat(9000), /longer than any/],
      ["abc.def.ghi", /header is not base64url-encoded JSON/],
      [withHeader({ alg: "ES256", typ: "JWT", kid }), /typ must be at\+jwt, this one has "JWT"/],
      [withHeader({ alg: "ES256", kid }), /typ must be at\+jwt, this one has none/],
      [withHeader({ alg: "none", typ: "at+jwt", kid }), /signed with "none"; .* use ES256/],
      [withHeader({ alg: "ES256", typ: "at+jwt" }), /names no signing key/],
      [`${b64({ alg: "ES256", typ: "at+jwt", kid })}.${payload}.abc`, /not an ES256 signature/],
    ];
    const before = store.calls.list;
    for (const [bad, reason] of cases) {
      const verdict = await a.verify(bad);
      expect(verdict, bad.slice(0, 40)).toMatchObject({ ok: false, code: "INVALID_TOKEN" });
      expect(verdict.ok === false && verdict.reason).toMatch(reason);
    }
    // None of them was worth a read of the store.
    expect(store.calls.list).toBe(before);
    // The shape check answers synchronously.
    expect(isPromise(a.verify("not a token"))).toBe(false);
  });

  it("accepts typ application/at+jwt (RFC 9068 §4) but refuses a signed payload that lacks claims", async () => {
    const a = authority();
    const { token } = await a.issue(request);
    const row = [...store.rows.values()][0]!;
    const ours = await importJWK(JSON.parse(row.privateJwk) as JWK, "ES256");
    const claims = unb64(token.split(".")[1]!);

    const mediaType = await new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", typ: "application/at+jwt", kid: row.kid })
      .sign(ours);
    expect((await a.verify(mediaType)).ok).toBe(true);

    const { kgk: _kgk, env: _env, ...partial } = claims;
    const lacking = await new SignJWT(partial)
      .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: row.kid })
      .sign(ours);
    expect(await a.verify(lacking)).toMatchObject({
      code: "INVALID_TOKEN",
      reason: "the token lacks the claims of a Keygate access token (kgk, env)",
    });
  });

  it("checks issuer and audience when asked, on the cached path too", async () => {
    const a = authority();
    const { token } = await a.issue(request);
    expect(await a.verify(token, { audience: "https://elsewhere.example" })).toMatchObject({
      code: "INVALID_TOKEN",
      reason: expect.stringMatching(/meant for .* not for "https:\/\/elsewhere.example"/),
    });
    // Still remembered as soundly signed.
    expect(a.verify(token, { issuer: ISSUER, audience: AUDIENCE })).toMatchObject({ ok: true });
    expect(a.verify(token, { issuer: "https://other.example" })).toMatchObject({
      code: "INVALID_TOKEN",
      reason: expect.stringMatching(/issued by "https:\/\/keygate.example.com", not by/),
    });
  });

  it("forgets a token on request", async () => {
    const a = authority();
    const { token } = await a.issue(request);
    await a.verify(token);
    a.forget(token);
    expect(a.cached).toBe(0);
    expect(isPromise(a.verify(token))).toBe(true);
  });

  it("reads the store at most once per interval for unknown kids, sharing the read", async () => {
    const a = authority({ reloadIntervalMs: 200 });
    const { token } = await a.issue(request);
    const [, payload, signature] = token.split(".") as [string, string, string];
    const before = store.calls.list;
    const garbage = Array.from(
      { length: 100 },
      () =>
        `${b64({ alg: "ES256", typ: "at+jwt", kid: randomBytes(8).toString("hex") })}.${payload}.${signature}`,
    );
    const verdicts = await Promise.all(garbage.map((t) => a.verify(t)));
    expect(verdicts.every((v) => !v.ok && /does not publish/.test(v.reason))).toBe(true);
    expect(store.calls.list - before).toBe(1);
  });
});

describe("rotation", () => {
  it("keeps old tokens verifiable and their key published until they expire, then prunes it", async () => {
    const a = authority({ rotateAfterS: 600, refreshS: 60 });
    const old = await a.issue(request);
    const k1 = decodeProtectedHeader(old.token).kid;

    now += 601 * 1000;
    const fresh = await a.issue(request);
    const k2 = decodeProtectedHeader(fresh.token).kid;
    expect(k2).not.toBe(k1);
    expect(store.rows.get(k1 as string)?.retiredAt).toBe(now);
    const retiredAt = now;

    expect((await a.jwks()).keys.map((k) => k.kid)).toEqual([k2, k1]);
    expect((await verifyOffline(a, old.token)).payload.jti).toBe(old.jti);
    expect((await verifyOffline(a, fresh.token)).payload.jti).toBe(fresh.jti);
    expect((await a.verify(old.token)).ok).toBe(true);

    // Published for the token lifetime after retirement, plus the refresh margin for an
    // instance that has not yet seen the retirement and still signs with it.
    now = retiredAt + (TTL_S + 60) * 1000 - 1;
    expect((await a.jwks()).keys.map((k) => k.kid)).toEqual([k2, k1]);
    expect(await a.prune()).toEqual([]);

    now += 1;
    expect((await a.jwks()).keys.map((k) => k.kid)).toEqual([k2]);
    expect(await a.prune()).toEqual([k1]);
    expect([...store.rows.keys()]).toEqual([k2]);
    expect(store.calls.remove).toBe(1);

    // The old token had expired long before; here it is refused as expired (remembered), and
    // as unknown where it was never seen.
    expect(a.verify(old.token)).toMatchObject({ code: "TOKEN_EXPIRED" });
    expect(await authority().verify(old.token)).toMatchObject({
      code: "INVALID_TOKEN",
      reason: expect.stringMatching(/does not publish/),
    });
  });

  it("rotate() makes a new key now and retires the current one", async () => {
    const a = authority();
    const before = await a.issue(request);
    const k1 = decodeProtectedHeader(before.token).kid as string;
    const k2 = await a.rotate();
    expect(k2).not.toBe(k1);
    expect(store.rows.get(k1)?.retiredAt).toBe(now);
    expect(store.rows.get(k2)?.retiredAt).toBeNull();
    const after = await a.issue(request);
    expect(decodeProtectedHeader(after.token).kid).toBe(k2);
    expect((await a.verify(before.token)).ok).toBe(true);
  });

  it("never prunes a key that still signs", async () => {
    const a = authority();
    await a.issue(request);
    now += 400 * 24 * 3600 * 1000;
    expect(await a.prune()).toEqual([]);
    expect(store.rows.size).toBe(1);
  });
});

describe("several instances on one store", () => {
  it("verifies tokens another instance issued, reading the store for a kid it has not seen", async () => {
    const a = authority();
    const b = authority();
    const t1 = await a.issue(request);
    expect((await b.verify(t1.token)).ok).toBe(true);

    const k2 = await a.rotate();
    const t2 = await a.issue(request);
    const reads = store.calls.list;
    expect(await b.verify(t2.token)).toMatchObject({ ok: true, claims: { jti: t2.jti } });
    expect(store.calls.list).toBe(reads + 1);
    // b now signs with the key a made, and publishes both.
    expect(decodeProtectedHeader((await b.issue(request)).token).kid).toBe(k2);
    expect((await b.jwks()).keys).toHaveLength(2);
    expect(store.rows.size).toBe(2);
  });

  it("covers an instance that signs with a key retired since it last read the store", async () => {
    const a = authority();
    const stale = authority({ refreshS: 60 });
    const eager = authority({ refreshS: 0 });
    await a.issue(request);
    await stale.jwks();
    await eager.jwks();
    const k2 = await a.rotate();
    const retiredAt = now;

    // Within its refresh time the stale instance still signs with the retired key...
    const late = await stale.issue(request);
    expect(decodeProtectedHeader(late.token).kid).not.toBe(k2);
    // ...which stays published until that token has expired too.
    now = retiredAt + TTL_S * 1000 + 30_000;
    expect((await a.jwks()).keys).toHaveLength(2);
    expect(await a.prune()).toEqual([]);
    now = START;
    expect((await verifyOffline(a, late.token)).payload.jti).toBe(late.jti);

    // One that reads the store before each issue moves to the new key at once.
    expect(decodeProtectedHeader((await eager.issue(request)).token).kid).toBe(k2);
  });

  it("retries a failed read of the store, and skips a row that is not a public key", async () => {
    const { token } = await authority().issue(request);
    store.rows.set("broken", {
      ...[...store.rows.values()][0]!,
      kid: "broken",
      publicJwk: { kty: "EC" },
    });
    const list = store.list.bind(store);
    let fail = true;
    store.list = () => (fail ? Promise.reject(new Error("database is down")) : list());

    const b = authority({ reloadIntervalMs: 1000 });
    await expect(b.verify(token)).rejects.toThrow("database is down");
    fail = false;
    expect((await b.verify(token)).ok).toBe(true);
    expect((await b.jwks()).keys.map((k) => k.kid)).not.toContain("broken");
  });

  it("reads the store once when a fresh instance's first token names an unknown kid", async () => {
    const { token } = await authority().issue(request);
    const [, payload, signature] = token.split(".") as [string, string, string];
    const reads = store.calls.list;
    const b = authority({ reloadIntervalMs: 1000 });
    const bad = `${b64({ alg: "ES256", typ: "at+jwt", kid: "unknown" })}.${payload}.${signature}`;
    expect(await b.verify(bad)).toMatchObject({ code: "INVALID_TOKEN" });
    expect(store.calls.list).toBe(reads + 1);
  });

  it("waits out the reload interval rather than refusing a new kid seen just after a read", async () => {
    const a = authority();
    const b = authority({ reloadIntervalMs: 100 });
    await b.jwks(); // b reads the (empty) store
    const t = await a.issue(request);
    const reads = store.calls.list;
    expect((await b.verify(t.token)).ok).toBe(true);
    expect(store.calls.list).toBe(reads + 1);
  });
});

describe("metadata", () => {
  it("describes the authorization server as RFC 8414 §2 asks", () => {
    const a = authority();
    expect(a.metadata(ISSUER, ["subscribers:read", "usage:read"])).toEqual({
      issuer: ISSUER,
      token_endpoint: `${ISSUER}/api/v1/external/oauth/token`,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      introspection_endpoint: `${ISSUER}/api/v1/external/oauth/introspect`,
      revocation_endpoint: `${ISSUER}/api/v1/external/oauth/revoke`,
      grant_types_supported: ["client_credentials"],
      // REQUIRED by §2 whatever the grants; Keygate has no authorization endpoint.
      response_types_supported: [],
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      scopes_supported: ["subscribers:read", "usage:read"],
    });
    expect(a.metadata(`${ISSUER}/`, []).token_endpoint).toBe(
      `${ISSUER}/api/v1/external/oauth/token`,
    );
  });
});

describe("isJwtShaped", () => {
  it("tells a JWT from a key or garbage without decoding", async () => {
    const { token } = await authority().issue(request);
    expect(isJwtShaped(token)).toBe(true);
    expect(isJwtShaped("pk_live_0123456789abcdef0123456789abcdef")).toBe(false);
    expect(isJwtShaped("a..b")).toBe(false);
    expect(isJwtShaped("a.b.c.d")).toBe(false);
    expect(isJwtShaped("a.b.c=")).toBe(false);
    expect(isJwtShaped(`a.${"b".repeat(9000)}.c`)).toBe(false);
  });
});

it("stores the private JWK as seal returns it: plain JSON without a master key", async () => {
  await authority().issue(request);
  const row = [...store.rows.values()][0]!;
  expect(JSON.parse(row.privateJwk)).toMatchObject({
    kty: "EC",
    crv: "P-256",
    x: row.publicJwk.x,
    y: row.publicJwk.y,
    d: expect.any(String),
  });
  expect(row.publicJwk).not.toHaveProperty("d");
});
