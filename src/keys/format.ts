import { hash, randomBytes } from "node:crypto";

/** A key works on live data or on test data, never both; its first characters say which. */
export const ENVIRONMENTS = ["live", "test"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export function isEnvironment(value: unknown): value is Environment {
  return value === "live" || value === "test";
}

/** Every live key starts with this; it tells a reader what the secret is without a look-up. */
export const KEY_PREFIX = "pk_live_";
/** Every test key starts with this. */
export const TEST_KEY_PREFIX = "pk_test_";
export const PREFIXES: Record<Environment, string> = { live: KEY_PREFIX, test: TEST_KEY_PREFIX };
/** Characters of the key kept in clear for display, e.g. `pk_live_a8f3`. */
export const DISPLAY_PREFIX_LENGTH = 12;

const KEY_SHAPE = /^pk_(?:live|test)_[0-9a-f]{32}$/;

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
export function mintKey(
  random: RandomSource = randomBytes,
  environment: Environment = "live",
): MintedKey {
  const bytes = random(16);
  if (bytes.length !== 16) throw new Error("random source must return 16 bytes");
  const key = PREFIXES[environment] + Buffer.from(bytes).toString("hex");
  return { key, hash: hashKey(key), prefix: displayPrefix(key) };
}

/** How a key's calls must be signed (SPEC §8): not at all, when they are, or always. */
export const SIGNING_MODES = ["off", "optional", "required"] as const;
export type SigningMode = (typeof SIGNING_MODES)[number];

export function isSigningMode(value: unknown): value is SigningMode {
  return value === "off" || value === "optional" || value === "required";
}

/** How a call authenticated: the key alone, the key with a signature, or an access token. */
export const CREDENTIALS = ["key", "signature", "token"] as const;
export type Credential = (typeof CREDENTIALS)[number];

/** Signing secrets start with this and the environment: `pks_live_` or `pks_test_`. */
export const SIGNING_SECRET_PREFIXES: Record<Environment, string> = {
  live: "pks_live_",
  test: "pks_test_",
};

/**
 * Mints a signing secret: the prefix and 32 CSPRNG bytes in lowercase hex. The HMAC key is
 * the whole string's UTF-8 bytes, so it can be pasted anywhere a key is taken as text.
 */
export function mintSigningSecret(
  environment: Environment,
  random: RandomSource = randomBytes,
): string {
  return SIGNING_SECRET_PREFIXES[environment] + Buffer.from(random(32)).toString("hex");
}

/** True only for `pk_live_` or `pk_test_` followed by exactly 32 lowercase hex characters. */
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

/** The environment a key's value names (`pk_test_` → test), whatever else is wrong with it. */
export function environmentOf(value: string): Environment | null {
  if (value.startsWith(TEST_KEY_PREFIX)) return "test";
  if (value.startsWith(KEY_PREFIX)) return "live";
  return null;
}
