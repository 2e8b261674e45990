import { createHash } from "node:crypto";
import { createVerifier, httpbis } from "http-message-signatures";
import { describe, expect, it } from "vitest";
import { type SignedRequest, verifySignature } from "../../src/credentials/signature.js";
import { contentDigest, keyIdOf, newNonce, sign } from "./signer.js";

/**
 * The SDK's signer against two verifiers it shares no code with: the http-message-signatures
 * package (written elsewhere, to RFC 9421) and the server's own verifySignature.
 */

const KEY = `pk_live_ab12${"cd".repeat(14)}`;
const SECRET = `pks_live_${"5e".repeat(32)}`;
const URL_ = "https://keygate.example.com:8443/api/v1/external/transactions?dry_run=1&x=%C3%A9";
const BODY = JSON.stringify({ subscriber_id: 7, amount: "25.00", description: "café ☕" });

/** The request as the server's verifier reads it. */
function asServerSees(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: Uint8Array | null,
): SignedRequest {
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method, targetUri: url, header: (n) => lower.get(n), body: body ?? null };
}

function headersOf(signed: ReturnType<typeof sign>): Record<string, string> {
  const { base: _base, ...headers } = signed;
  return headers as Record<string, string>;
}

/** Verifies with http-message-signatures, requiring the components Keygate requires. */
async function libraryVerifies(
  method: string,
  url: string,
  headers: Record<string, string>,
  secret = SECRET,
  requiredFields = ["@method", "@target-uri"],
): Promise<boolean | null> {
  const seen: { keyid?: string; alg?: string }[] = [];
  const ok = await httpbis.verifyMessage(
    {
      keyLookup: async (params) => {
        seen.push({ keyid: params.keyid, alg: params.alg });
        return {
          id: keyIdOf(KEY),
          algs: ["hmac-sha256"],
          verify: createVerifier(Buffer.from(secret, "utf8"), "hmac-sha256"),
        };
      },
      requiredFields,
      requiredParams: ["created", "keyid", "nonce"],
      maxAge: 300,
      tolerance: 5,
    },
    { method, url, headers },
  );
  expect(seen).toEqual([{ keyid: "pk_live_ab12", alg: "hmac-sha256" }]);
  return ok;
}

describe("the SDK's RFC 9421 signer", () => {
  it("writes the documented headers: sig1, the covered components, created, keyid, alg, nonce", () => {
    const s = sign({
      method: "post",
      url: URL_,
      body: BODY,
      key: KEY,
      secret: SECRET,
      created: 1_800_000_000,
      nonce: "bm9uY2U",
    });
    const digest = `sha-256=:${createHash("sha256").update(Buffer.from(BODY, "utf8")).digest("base64")}:`;
    expect(s["Content-Digest"]).toBe(digest);
    expect(s["Signature-Input"]).toBe(
      'sig1=("@method" "@target-uri" "content-digest");created=1800000000;keyid="pk_live_ab12";alg="hmac-sha256";nonce="bm9uY2U"',
    );
    expect(s.Signature).toMatch(/^sig1=:[A-Za-z0-9+/]{43}=:$/);
    expect(s.base).toBe(
      [
        '"@method": POST',
        `"@target-uri": ${URL_}`,
        `"content-digest": ${digest}`,
        '"@signature-params": ("@method" "@target-uri" "content-digest");created=1800000000;keyid="pk_live_ab12";alg="hmac-sha256";nonce="bm9uY2U"',
      ].join("\n"),
    );
  });

  it("covers content-digest only with a body, and draws a fresh 16-byte nonce each time", () => {
    const a = sign({ method: "GET", url: URL_, key: KEY, secret: SECRET });
    const b = sign({ method: "GET", url: URL_, body: "", key: KEY, secret: SECRET });
    expect(a["Content-Digest"]).toBeUndefined();
    expect(b["Content-Digest"]).toBeUndefined();
    expect(a["Signature-Input"]).toMatch(/^sig1=\("@method" "@target-uri"\);created=\d+;/);
    const nonceOf = (s: { "Signature-Input": string }) =>
      /nonce="([^"]+)"/.exec(s["Signature-Input"])?.[1];
    expect(nonceOf(a)).toMatch(/^[\w-]{22}$/);
    expect(nonceOf(a)).not.toBe(nonceOf(b));
    expect(Buffer.from(newNonce(), "base64url")).toHaveLength(16);
    expect(
      Math.abs(Number(/created=(\d+)/.exec(a["Signature-Input"])?.[1]) - Date.now() / 1000),
    ).toBeLessThan(2);
  });

  it("verifies with http-message-signatures, with and without a body", async () => {
    const post = sign({ method: "POST", url: URL_, body: BODY, key: KEY, secret: SECRET });
    expect(
      await libraryVerifies("POST", URL_, headersOf(post), SECRET, [
        "@method",
        "@target-uri",
        "content-digest",
      ]),
    ).toBe(true);
    // The digest in the signed header is the body's: checked here, as the library does not.
    expect(post["Content-Digest"]).toBe(contentDigest(Buffer.from(BODY, "utf8")));

    const get = sign({ method: "GET", url: URL_, key: KEY, secret: SECRET });
    expect(await libraryVerifies("GET", URL_, headersOf(get))).toBe(true);
  });

  it("does not verify with http-message-signatures when the method, URL or secret differs", async () => {
    const s = headersOf(sign({ method: "GET", url: URL_, key: KEY, secret: SECRET }));
    expect(await libraryVerifies("DELETE", URL_, s)).toBe(false);
    expect(await libraryVerifies("GET", `${URL_}&y=2`, s)).toBe(false);
    expect(await libraryVerifies("GET", URL_, s, `${SECRET.slice(0, -1)}0`)).toBe(false);
  });

  it("verifies with the server's verifySignature, nonce once, and is refused when tampered", async () => {
    const now = Date.now();
    const spent = new Set<string>();
    const options = {
      keyid: keyIdOf(KEY),
      secret: Buffer.from(SECRET, "utf8"),
      now,
      nonceFresh: (n: string) => (spent.has(n) ? false : (spent.add(n), true)),
    };
    const body = Buffer.from(BODY, "utf8");
    const s = sign({ method: "POST", url: URL_, body, key: KEY, secret: SECRET });
    const req = asServerSees("POST", URL_, headersOf(s), body);
    expect(await verifySignature(req, options)).toMatchObject({ ok: true, label: "sig1" });
    expect(await verifySignature(req, options)).toMatchObject({ code: "SIGNATURE_REPLAYED" });

    // Signed again (a retry): a new nonce, accepted.
    const again = sign({ method: "POST", url: URL_, body, key: KEY, secret: SECRET });
    expect(
      await verifySignature(asServerSees("POST", URL_, headersOf(again), body), options),
    ).toMatchObject({ ok: true });

    // Another body under the same headers: the digest no longer matches.
    const fresh = sign({ method: "POST", url: URL_, body, key: KEY, secret: SECRET });
    const tampered = await verifySignature(
      asServerSees("POST", URL_, headersOf(fresh), Buffer.from(BODY.replace("25.00", "2500"))),
      options,
    );
    expect(tampered).toMatchObject({ ok: false, code: "SIGNATURE_INVALID" });

    // The server computes the same signature base as the signer.
    const wrong = await verifySignature(asServerSees("POST", URL_, headersOf(fresh), body), {
      ...options,
      secret: Buffer.from("another secret"),
    });
    expect(wrong).toMatchObject({ ok: false, code: "SIGNATURE_INVALID", base: fresh.base });

    const get = sign({ method: "GET", url: URL_, key: KEY, secret: SECRET });
    expect(await verifySignature(asServerSees("GET", URL_, headersOf(get)), options)).toMatchObject(
      { ok: true },
    );
  });

  it("signs with the time given, which the server's window judges", async () => {
    const now = 1_800_000_000;
    const s = sign({ method: "GET", url: URL_, key: KEY, secret: SECRET, created: now - 301 });
    const verdict = await verifySignature(asServerSees("GET", URL_, headersOf(s)), {
      keyid: "pk_live_ab12",
      secret: Buffer.from(SECRET, "utf8"),
      now: now * 1000,
    });
    expect(verdict).toMatchObject({ ok: false, code: "SIGNATURE_EXPIRED", skewS: -301 });
  });
});
