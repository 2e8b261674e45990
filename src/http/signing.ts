import type { FastifyRequest } from "fastify";
import { type SignedRequest, verifySignature } from "../credentials/signature.js";
import type { Keygate } from "../keygate.js";
import type { KeyRecord, SignatureCheck, SignatureFailure } from "../keys/verify.js";

/** Whether the request carries an RFC 9421 signature (or half of one) to be verified. */
export function carriesSignature(request: FastifyRequest): boolean {
  return (
    request.headers["signature-input"] !== undefined || request.headers.signature !== undefined
  );
}

/**
 * A signed request as the verifier reads it, and the check the key verifier asks of a key
 * that signs: the request as received (its raw body included) against the key's secret,
 * each nonce recorded once per key. One object per request, its work in methods: nothing
 * else is allocated on the way.
 */
export class SignedCall implements SignedRequest, SignatureCheck {
  readonly method: string;
  /** The target URI as the client addressed it: what `@target-uri` covers. */
  readonly targetUri: string;
  readonly body: Uint8Array | null;
  private keyId = 0;

  constructor(
    private readonly kg: Keygate,
    private readonly request: FastifyRequest,
  ) {
    this.method = request.method;
    this.targetUri = `${request.protocol}://${request.host}${request.url}`;
    this.body = request.rawBody;
  }

  header(name: string): string | undefined {
    const v = this.request.headers[name];
    return Array.isArray(v) ? v.join(", ") : v;
  }

  /** Records the nonce for this key; false when it was seen already. */
  fresh(nonce: string, untilMs: number): boolean | Promise<boolean> {
    return this.kg.nonces.claim(`${this.keyId}:${nonce}`, untilMs, this.kg.clock());
  }

  check(key: KeyRecord): SignatureFailure | null | Promise<SignatureFailure | null> {
    if (key.signingKey === null) {
      return {
        code: "SIGNATURE_INVALID",
        message: `Keygate cannot read the signing secret of this key (${key.prefix}…): it was sealed under a master key this server does not have. Start Keygate with the KEYGATE_MASTER_KEY the secret was made under, or roll the key for a new secret`,
      };
    }
    this.keyId = key.id;
    const verdict = verifySignature(this, {
      keyid: key.prefix,
      secret: key.signingKey,
      now: this.kg.clock(),
      nonces: this,
    });
    return verdict instanceof Promise ? verdict.then(failureOf) : failureOf(verdict);
  }
}

function failureOf(v: Awaited<ReturnType<typeof verifySignature>>): SignatureFailure | null {
  if (v.ok) return null;
  const { ok: _ok, ...failure } = v;
  return failure;
}
