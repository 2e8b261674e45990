import { hash, randomBytes } from "node:crypto";

/** Every key starts with this; it tells a reader what the secret is without a look-up. */
export const KEY_PREFIX = "pk_live_";
/** Characters of the key kept in clear for display, e.g. `pk_live_a8f3`. */
export const DISPLAY_PREFIX_LENGTH = 12;

const KEY_SHAPE = /^pk_live_[0-9a-f]{32}$/;

export type MintedKey = {
  /** The plaintext: shown once, never stored. */
  key: string;
  /** Lowercase hex SHA-256 of the whole key: the only thing stored. */
  hash: string;
  /** The first {@link DISPLAY_PREFIX_LENGTH} characters, safe to show. */
  prefix: string;
};

export type RandomSource = (size: number) => Uint8Array;

/** Mints a key from 16 CSPRNG bytes. `random` is injectable for tests only. */
export function mintKey(random: RandomSource = randomBytes): MintedKey {
  const bytes = random(16);
  if (bytes.length !== 16) throw new Error("random source must return 16 bytes");
  const key = KEY_PREFIX + Buffer.from(bytes).toString("hex");
  return { key, hash: hashKey(key), prefix: displayPrefix(key) };
}

/** True only for `pk_live_` followed by exactly 32 lowercase hex characters. */
export function isWellFormedKey(value: string): boolean {
  return value.length === KEY_PREFIX.length + 32 && KEY_SHAPE.test(value);
}

/** One-shot SHA-256 (`crypto.hash`, far cheaper than WebCrypto's digest on the hot path). */
export function hashKey(key: string): string {
  return hash("sha256", key, "hex");
}

export function displayPrefix(key: string): string {
  return key.slice(0, DISPLAY_PREFIX_LENGTH);
}
