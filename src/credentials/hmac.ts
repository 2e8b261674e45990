import { hash, type KeyObject, timingSafeEqual } from "node:crypto";

/**
 * HMAC-SHA256 (RFC 2104) as two one-shot SHA-256 calls over precomputed pads:
 * H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)). `createHmac` builds a stream object per call, which in
 * the server costs several µs a signed request; this costs two native hashes and no object.
 * Each hash answers as a "binary" (latin1) string, one character per byte, written into
 * buffers kept here: a hash that answers with a Buffer allocates a new ArrayBuffer, which in
 * a loop costs about three times the hash itself (bench/hash-output.ts). Tested against
 * `createHmac` (hmac.test.ts).
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

/** The last MAC computed, as bytes; overwritten by the next call. */
const mac = Buffer.alloc(DIGEST);

/** The MAC of a UTF-8 message into `mac`. Synchronous; the scratch buffers never outlive a call. */
function compute(secret: Uint8Array | KeyObject, message: string): Buffer {
  const k = hmacKey(secret);
  // At most 3 bytes of UTF-8 per UTF-16 unit: room is checked without a pass over the message.
  if (BLOCK + message.length * 3 > scratch.length)
    scratch = Buffer.alloc(BLOCK + message.length * 6);
  k.ipad.copy(scratch, 0);
  const n = scratch.write(message, BLOCK, "utf8");
  k.opad.write(hash("sha256", scratch.subarray(0, BLOCK + n), "binary"), BLOCK, "latin1");
  mac.write(hash("sha256", k.opad, "binary"), 0, "latin1");
  return mac;
}

/** HMAC-SHA256 of a UTF-8 message, as a Buffer of its own. */
export function hmacSha256(secret: Uint8Array | KeyObject, message: string): Buffer {
  return Buffer.from(compute(secret, message));
}

/** Whether `given` is the HMAC-SHA256 of the message, compared in constant time; allocates nothing. */
export function hmacMatches(
  secret: Uint8Array | KeyObject,
  message: string,
  given: Uint8Array,
): boolean {
  const expected = compute(secret, message);
  return given.length === DIGEST && timingSafeEqual(given, expected);
}
