import type { FastifyRequest } from "fastify";
import { verifySignature } from "../credentials/signature.js";
import type { Keygate } from "../keygate.js";
import type { KeyRecord, SignatureFailure } from "../keys/verify.js";

/** Whether the request carries an RFC 9421 signature (or half of one) to be verified. */
export function carriesSignature(request: FastifyRequest): boolean {
  return (
    request.headers["signature-input"] !== undefined || request.headers.signature !== undefined
  );
}

/** The target URI as the client addressed it: what `@target-uri` covers. */
export function targetUri(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}${request.url}`;
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

/**
 * The signature check the verifier asks of a key that signs: the request as received (its
 * raw body included) against the key's secret, with each nonce recorded once per key.
 */
export function signatureCheck(
  kg: Keygate,
  request: FastifyRequest,
): (key: KeyRecord) => Promise<SignatureFailure | null> {
  return async (key) => {
    if (key.signingKey === null) {
      return {
        code: "SIGNATURE_INVALID",
        message: `Keygate cannot read the signing secret of this key (${key.prefix}…): it was sealed under a master key this server does not have. Start Keygate with the KEYGATE_MASTER_KEY the secret was made under, or roll the key for a new secret`,
      };
    }
    const verdict = await verifySignature(
      {
        method: request.method,
        targetUri: targetUri(request),
        header: (name) => headerOf(request, name),
        body: request.rawBody,
      },
      {
        keyid: key.prefix,
        secret: key.signingKey,
        now: kg.clock(),
        nonceFresh: (nonce, untilMs) => kg.nonces.claim(`${key.id}:${nonce}`, untilMs, kg.clock()),
      },
    );
    if (verdict.ok) return null;
    const { ok: _ok, ...failure } = verdict;
    return failure;
  };
}
