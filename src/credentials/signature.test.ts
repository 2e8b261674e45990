import { createHash } from "node:crypto";
import { createSigner, httpbis } from "http-message-signatures";
import { describe, expect, it } from "vitest";
import { type SignedRequest, verifySignature } from "./signature.js";

/** A request as the verifier reads it, from a URL, headers (any case) and a body. */
function request(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: string,
): SignedRequest {
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    method,
    targetUri: url,
    header: (name) => lower.get(name),
    body: body === undefined ? null : Buffer.from(body),
  };
}

// RFC 9421 Appendix B.2: the test request, and B.1.5's shared secret.
const RFC_SECRET = Buffer.from(
  "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==",
  "base64",
);
const RFC_HEADERS = {
  Host: "example.com",
  Date: "Tue, 20 Apr 2021 02:07:55 GMT",
  "Content-Type": "application/json",
  "Content-Digest":
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
  "Content-Length": "18",
};
const RFC_URL = "https://example.com/foo?param=Value&Pet=dog";
const RFC_BODY = '{"hello": "world"}';
const RFC_CREATED = 1618884473;

describe("RFC 9421 signatures, hmac-sha256", () => {
  it("verifies the RFC's own example (Appendix B.2.5) and computes its signature base", async () => {
    const signed = request(
      "POST",
      RFC_URL,
      {
        ...RFC_HEADERS,
        "Signature-Input": `sig-b25=("date" "@authority" "content-type");created=${RFC_CREATED};keyid="test-shared-secret"`,
        Signature: "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:",
      },
      RFC_BODY,
    );
    const options = {
      keyid: "test-shared-secret",
      secret: RFC_SECRET,
      now: RFC_CREATED * 1000,
      required: ["@authority"],
      requireNonce: false,
    };
    // The example covers no content-digest, which Keygate requires of a request with a body:
    // it is verified here as a request without one (the base does not include the body).
    const verdict = await verifySignature({ ...signed, body: null }, options);
    expect(verdict).toEqual({ ok: true, label: "sig-b25", created: RFC_CREATED, nonce: null });

    // One byte of the secret off: the refusal carries the RFC's exact signature base.
    const wrong = await verifySignature(
      { ...signed, body: null },
      { ...options, secret: Buffer.from(RFC_SECRET).fill(0, 0, 1) },
    );
    expect(wrong).toMatchObject({ ok: false, code: "SIGNATURE_INVALID" });
    expect(wrong.ok === false && wrong.base).toBe(
      [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@authority": example.com',
        '"content-type": application/json',
        `"@signature-params": ("date" "@authority" "content-type");created=${RFC_CREATED};keyid="test-shared-secret"`,
      ].join("\n"),
    );
  });

  /** Signs with http-message-signatures, an implementation written elsewhere. */
  async function signWithLibrary(
    secret: string,
    o: {
      fields: string[];
      created: number;
      nonce?: string;
      keyid?: string;
      url?: string;
      body?: string;
    },
  ) {
    const body = o.body;
    const headers: Record<string, string> = { host: "api.example.com" };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-digest"] = `sha-256=:${createHash("sha256").update(body).digest("base64")}:`;
    }
    const req = {
      method: "POST",
      url: o.url ?? "https://api.example.com/api/v1/external/transactions?x=1",
      headers,
    };
    const signed = await httpbis.signMessage(
      {
        key: createSigner(Buffer.from(secret, "utf8"), "hmac-sha256", o.keyid ?? "pk_live_ab12"),
        fields: o.fields,
        params: ["created", "keyid", "alg", ...(o.nonce ? ["nonce"] : [])],
        paramValues: {
          created: new Date(o.created * 1000),
          ...(o.nonce ? { nonce: o.nonce } : {}),
        },
      },
      req,
    );
    const flat = Object.fromEntries(
      Object.entries(signed.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v]),
    );
    return request(req.method, String(req.url), flat, body);
  }

  const SECRET = `pks_live_${"5e".repeat(32)}`;
  const NOW = 1_800_000_000;
  const base = {
    keyid: "pk_live_ab12",
    secret: Buffer.from(SECRET, "utf8"),
    now: NOW * 1000,
  };

  it("accepts a request signed by an independent library over @method, @target-uri and content-digest", async () => {
    const seen = new Set<string>();
    const nonceFresh = (n: string) => (seen.has(n) ? false : (seen.add(n), true));
    const req = await signWithLibrary(SECRET, {
      fields: ["@method", "@target-uri", "content-digest"],
      created: NOW - 10,
      nonce: "n-1",
      body: '{"amount":"25.00"}',
    });
    expect(await verifySignature(req, { ...base, nonceFresh })).toMatchObject({
      ok: true,
      nonce: "n-1",
    });
    // The same request again: its nonce was spent.
    const again = await verifySignature(req, { ...base, nonceFresh });
    expect(again).toMatchObject({ ok: false, code: "SIGNATURE_REPLAYED" });
  });

  it("verifies the same signature sent in fields written other than canonically", async () => {
    const req = await signWithLibrary(SECRET, {
      fields: ["@method", "@target-uri"],
      created: NOW,
      nonce: "n-2",
    });
    const input = req.header("signature-input") as string;
    const signature = req.header("signature") as string;
    // Equivalent fields the canonical reader leaves to the general parser: white space in the
    // list, a second member (another key's), and the signature beside another one.
    const variants = [
      { "signature-input": input.replace('" "', '"  "').replace("=(", "=( ") },
      { "signature-input": `other=("@method");keyid="x", ${input}` },
      { signature: `other=:AAAA:, ${signature}` },
    ];
    for (const [i, v] of variants.entries()) {
      const fields = { "signature-input": input, signature, ...v };
      const variant = {
        ...req,
        header: (n: string) => (n in fields ? fields[n as keyof typeof fields] : req.header(n)),
      };
      const nonceFresh = () => true;
      expect(await verifySignature(variant, { ...base, nonceFresh }), String(i)).toMatchObject({
        ok: true,
        nonce: "n-2",
      });
    }
    // And the canonical form itself, through the canonical reader.
    expect(await verifySignature(req, { ...base, nonceFresh: () => true })).toMatchObject({
      ok: true,
    });
  });

  it("refuses a body that is not the one digested, and a digest left out of the signature", async () => {
    const req = await signWithLibrary(SECRET, {
      fields: ["@method", "@target-uri", "content-digest"],
      created: NOW,
      nonce: "n-2",
      body: '{"amount":"25.00"}',
    });
    const tampered = await verifySignature(
      { ...req, body: Buffer.from('{"amount":"2500"}') },
      base,
    );
    expect(tampered).toMatchObject({ ok: false, code: "SIGNATURE_INVALID" });
    expect(tampered.ok === false && tampered.message).toContain(
      "Content-Digest sha-256 does not match",
    );

    const uncovered = await signWithLibrary(SECRET, {
      fields: ["@method", "@target-uri"],
      created: NOW,
      nonce: "n-3",
      body: "{}",
    });
    const v = await verifySignature(uncovered, base);
    expect(v).toMatchObject({ ok: false, code: "SIGNATURE_INVALID" });
    expect(v.ok === false && v.message).toContain("must also cover content-digest");
  });

  it("refuses in the contract's order: required, invalid, expired, replayed", async () => {
    const none = await verifySignature(request("GET", "https://a.example/x", {}), base);
    expect(none).toMatchObject({ ok: false, code: "SIGNATURE_REQUIRED" });
    expect(none.ok === false && none.message).toContain('keyid "pk_live_ab12"');

    // Expired and signed with the wrong secret: invalid wins.
    const old = await signWithLibrary("wrong-secret", {
      fields: ["@method", "@target-uri"],
      created: NOW - 3600,
      nonce: "n-4",
    });
    expect(await verifySignature(old, base)).toMatchObject({ code: "SIGNATURE_INVALID" });

    const stale = await signWithLibrary(SECRET, {
      fields: ["@method", "@target-uri"],
      created: NOW - 301,
      nonce: "n-5",
    });
    const expired = await verifySignature(stale, base);
    expect(expired).toMatchObject({ ok: false, code: "SIGNATURE_EXPIRED", skewS: -301 });
    expect(expired.ok === false && expired.message).toContain("301 s before this server's clock");
    const ahead = await signWithLibrary(SECRET, {
      fields: ["@method", "@target-uri"],
      created: NOW + 299,
      nonce: "n-6",
    });
    expect(await verifySignature(ahead, base)).toMatchObject({ ok: true });
  });

  it("names what is wrong: keyid, coverage, nonce, a changed URL", async () => {
    const other = await signWithLibrary(SECRET, {
      fields: ["@method", "@target-uri"],
      created: NOW,
      nonce: "n-7",
      keyid: "pk_live_ffff",
    });
    const v1 = await verifySignature(other, base);
    expect(v1.ok === false && v1.message).toContain(
      'names keyid "pk_live_ffff", not this key\'s prefix "pk_live_ab12"',
    );

    const thin = await signWithLibrary(SECRET, { fields: ["@method"], created: NOW, nonce: "n-8" });
    const v2 = await verifySignature(thin, base);
    expect(v2.ok === false && v2.message).toContain("must also cover @target-uri");

    const noNonce = await signWithLibrary(SECRET, {
      fields: ["@method", "@target-uri"],
      created: NOW,
    });
    const v3 = await verifySignature(noNonce, base);
    expect(v3.ok === false && v3.message).toContain("needs a nonce");

    const signed = await signWithLibrary(SECRET, {
      fields: ["@method", "@target-uri"],
      created: NOW,
      nonce: "n-9",
    });
    const moved = await verifySignature({ ...signed, targetUri: `${signed.targetUri}&y=2` }, base);
    expect(moved).toMatchObject({ ok: false, code: "SIGNATURE_INVALID" });
    expect(moved.ok === false && moved.base).toContain(
      '"@target-uri": https://api.example.com/api/v1/external/transactions?x=1&y=2',
    );

    const garbled = await verifySignature(
      request("GET", "https://a.example/x", {
        "signature-input": "sig=(",
        signature: "sig=:AA==:",
      }),
      base,
    );
    expect(garbled).toMatchObject({ ok: false, code: "SIGNATURE_INVALID" });
    expect(garbled.ok === false && garbled.message).toContain(
      "Signature-Input is not a structured-field dictionary",
    );
  });
});

describe("the @signature-params line", () => {
  it("is what structured-headers serialises, for any components and parameters (property)", async () => {
    const fc = (await import("fast-check")).default;
    const { parseDictionary, serializeInnerList } = await import("structured-headers");
    const { signatureParams } = await import("./signature.js");
    const token = fc.stringMatching(/^[a-z*][a-z0-9_.*-]{0,12}$/);
    const text = fc.string({ maxLength: 20 }).filter((s) => /^[\x20-\x7e]*$/.test(s));
    const value = fc.oneof(
      fc.integer({ min: -1e12, max: 1e12 }),
      text,
      fc.boolean(),
      fc.double({ min: -1000, max: 1000, noNaN: true }).map((d) => Math.round(d * 1000) / 1000),
    );
    const quote = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
    const item = (v: unknown) =>
      typeof v === "string" ? quote(v) : typeof v === "boolean" ? (v ? "?1" : "?0") : String(v);
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom("@method", "@target-uri", "content-digest"), text), {
          maxLength: 5,
        }),
        fc.uniqueArray(fc.tuple(token, value), { selector: ([k]) => k, maxLength: 6 }),
        (names, params) => {
          const field = `sig1=(${names.map(quote).join(" ")})${params.map(([k, v]) => `;${k}=${item(v)}`).join("")}`;
          const member = parseDictionary(field).get("sig1") as Parameters<
            typeof serializeInnerList
          >[0];
          expect(signatureParams(member)).toBe(serializeInnerList(member));
        },
      ),
      { numRuns: 500 },
    );
  });
});
