import { createHash, createHmac, randomBytes } from "node:crypto";
import { type InnerList, serializeInnerList } from "structured-headers";

/**
 * RFC 9421 HTTP Message Signatures, `hmac-sha256`, as Keygate verifies them (SPEC §8):
 *
 *   Content-Digest:  sha-256=:<base64 of SHA-256(body)>:            (RFC 9530; only with a body)
 *   Signature-Input: sig1=("@method" "@target-uri" "content-digest");created=…;keyid="pk_live_ab12";alg="hmac-sha256";nonce="…"
 *   Signature:       sig1=:<base64 of HMAC-SHA256(secret, signature base)>:
 *
 * The signature base is one line per covered component, `"name": value`, and last the line
 * `"@signature-params": ` followed by the Signature-Input member's value, joined with "\n"
 * and no trailing newline (RFC 9421 §2.5).
 */

export type SignInput = {
  /** The HTTP method, any case: it is signed upper-case. */
  method: string;
  /** The full URL the request is sent to, exactly as sent: `scheme://host[:port]/path?query`. */
  url: string;
  /** The exact body bytes sent (a string is taken as UTF-8); none or empty for no body. */
  body?: Uint8Array | string | null;
  /** The API key (its first 12 characters are the keyid) or the 12-character prefix itself. */
  key: string;
  /** The signing secret (`pks_live_…`); the HMAC key is its whole string's UTF-8 bytes. */
  secret: string;
  /** Unix seconds; default now. */
  created?: number;
  /** Default 16 random bytes, base64url. A nonce is accepted once per key: never reuse one. */
  nonce?: string;
  /** The signature's label; default `sig1`. */
  label?: string;
};

/** The headers a signed request adds (Content-Digest only when there is a body). */
export type SignatureHeaders = {
  "Signature-Input": string;
  Signature: string;
  "Content-Digest"?: string;
};

/** A key's display prefix, the `keyid` of its signatures: `pk_live_` and 4 hex, 12 characters. */
export function keyIdOf(key: string): string {
  return key.slice(0, 12);
}

/** A fresh nonce: 16 bytes from the CSPRNG, base64url without padding (22 characters). */
export function newNonce(): string {
  return randomBytes(16).toString("base64url");
}

/** RFC 9530 Content-Digest of the exact body bytes: `sha-256=:<base64>:`. */
export function contentDigest(body: Uint8Array | string): string {
  return `sha-256=:${createHash("sha256").update(body).digest("base64")}:`;
}

/** The signature base and headers for one request; sign each attempt anew (fresh nonce). */
export function sign(input: SignInput): SignatureHeaders & { base: string } {
  const body = typeof input.body === "string" ? Buffer.from(input.body, "utf8") : input.body;
  const hasBody = body !== undefined && body !== null && body.length > 0;
  const digest = hasBody ? contentDigest(body) : undefined;

  // The covered components and their values, in the order they are signed.
  const components: [string, string][] = [
    ["@method", input.method.toUpperCase()],
    ["@target-uri", input.url],
  ];
  if (digest !== undefined) components.push(["content-digest", digest]);

  // Signature-Input's member: the inner list of component names with the parameters. The
  // structured-headers serialiser quotes strings and writes `;name=value` as RFC 8941 says.
  const params = new Map<string, string | number>([
    ["created", input.created ?? Math.floor(Date.now() / 1000)],
    ["keyid", keyIdOf(input.key)],
    ["alg", "hmac-sha256"],
    ["nonce", input.nonce ?? newNonce()],
  ]);
  const covered: InnerList = [components.map(([name]) => [name, new Map()]), params];
  const signatureParams = serializeInnerList(covered);

  const base = [
    ...components.map(([name, value]) => `"${name}": ${value}`),
    `"@signature-params": ${signatureParams}`,
  ].join("\n");
  const mac = createHmac("sha256", Buffer.from(input.secret, "utf8")).update(base).digest("base64");

  const label = input.label ?? "sig1";
  return {
    base,
    "Signature-Input": `${label}=${signatureParams}`,
    Signature: `${label}=:${mac}:`,
    ...(digest === undefined ? {} : { "Content-Digest": digest }),
  };
}
