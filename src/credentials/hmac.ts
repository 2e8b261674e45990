import { hash, type KeyObject } from "node:crypto";

/**
 * HMAC-SHA256 (RFC 2104) as two one-shot SHA-256 calls over precomputed pads:
 * H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)). `createHmac` builds a stream object per call, which in
 * the server costs several µs a signed request; this costs two native hashes and no object.
 * Tested against `createHmac` (hmac.test.ts).
 */
const BLOCK = 64;
const DIGEST = 32;

/** A key's two pads, worked out once per key. */
export type HmacKey = { readonly ipad: Buffer; readonly opad: Buffer };

const prepared = new WeakMap<object, HmacKey>();

/** The pads of a secret (its bytes, or a secret KeyObject holding them); cached per object. */
export function hmacKey(secret: Uint8Array | KeyObject): HmacKey {
  let k = prepared.get(secret);
  if (k === undefined) {
    let bytes: Uint8Array = secret instanceof Uint8Array ? secret : secret.export();
    // A key longer than the block is replaced by its digest (RFC 2104 §2).
    if (bytes.length > BLOCK) bytes = hash("sha256", bytes, "buffer");
    const ipad = Buffer.alloc(BLOCK, 0x36);
    const opad = Buffer.alloc(BLOCK + DIGEST, 0);
    opad.fill(0x5c, 0, BLOCK);
    for (let i = 0; i < bytes.length; i++) {
      ipad[i] = (ipad[i] as number) ^ (bytes[i] as number);
      opad[i] = (opad[i] as number) ^ (bytes[i] as number);
    }
    k = { ipad, opad };
    prepared.set(secret, k);
  }
  return k;
}

/** Scratch for the inner hash's input: the pad, then the message (grown when one is longer). */
let scratch = Buffer.alloc(16 * 1024);

/** HMAC-SHA256 of a UTF-8 message. Synchronous; the scratch buffers never outlive a call. */
export function hmacSha256(secret: Uint8Array | KeyObject, message: string): Buffer {
  const k = hmacKey(secret);
  const most = BLOCK + Buffer.byteLength(message, "utf8");
  if (most > scratch.length) scratch = Buffer.alloc(most * 2);
  k.ipad.copy(scratch, 0);
  const n = scratch.write(message, BLOCK, "utf8");
  const inner = hash("sha256", scratch.subarray(0, BLOCK + n), "buffer");
  inner.copy(k.opad, BLOCK);
  return hash("sha256", k.opad, "buffer");
}
