import { createHash, randomInt } from "node:crypto";
import { HOTP, Secret, TOTP } from "otpauth";
import QRCode from "qrcode";

/** RFC 6238 as every authenticator app reads it by default: SHA-1, 6 digits, 30 s steps. */
export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_S = 30;
export const TOTP_ALGORITHM = "SHA1";
/** Steps accepted either side of the current one, for a phone whose clock is a little off. */
export const TOTP_WINDOW = 1;
export const ISSUER = "Keygate";

/** A new secret: 20 random bytes (160 bits, RFC 4226's recommendation), in base32. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The `otpauth://totp/...` URI an authenticator app reads from the QR code. */
export function otpauthUrl(secret: string, username: string): string {
  return new TOTP({
    issuer: ISSUER,
    label: username,
    secret: Secret.fromBase32(secret),
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_S,
  }).toString();
}

/** The QR code of `url` as an SVG document (what the enrol response carries). */
export function qrSvg(url: string): Promise<string> {
  return QRCode.toString(url, { type: "svg", errorCorrectionLevel: "M", margin: 2 });
}

/** The time step of `ms` since the epoch. */
export function stepAt(ms: number): number {
  return Math.floor(ms / 1000 / TOTP_PERIOD_S);
}

/** The code of `secret` at `ms`, for tests and tools. */
export function totpAt(secret: string, ms: number): string {
  return TOTP.generate({
    secret: Secret.fromBase32(secret),
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_S,
    timestamp: ms,
  });
}

/** What a code sent as `otp` amounts to: `ok` with its step, `reused`, or `wrong`. */
export type TotpMatch = { result: "ok"; step: number } | { result: "reused" } | { result: "wrong" };

/** Looks like a code: 6 digits, spaces allowed ("123 456", as some apps show it). */
export function normaliseTotp(input: string): string | null {
  const code = input.replace(/\s+/g, "");
  return /^\d{6}$/.test(code) ? code : null;
}

/**
 * Checks `code` against the steps around `ms` (±TOTP_WINDOW). A step at or before
 * `lastStep` was spent already: its code is refused as reused, so an observed code cannot
 * be replayed within its window (RFC 6238 §5.2).
 */
export function matchTotp(
  secret: string,
  code: string,
  ms: number,
  lastStep: number | null,
): TotpMatch {
  const token = normaliseTotp(code);
  if (token === null) return { result: "wrong" };
  const key = Secret.fromBase32(secret);
  const now = stepAt(ms);
  let reused = false;
  // The current step first, then the previous and next one.
  for (const step of [now, now - 1, now + 1]) {
    const delta = HOTP.validate({
      token,
      secret: key,
      algorithm: TOTP_ALGORITHM,
      digits: TOTP_DIGITS,
      counter: step,
      window: 0,
    });
    if (delta === null) continue;
    if (lastStep !== null && step <= lastStep) reused = true;
    else return { result: "ok", step };
  }
  return reused ? { result: "reused" } : { result: "wrong" };
}

/** How many recovery codes a user gets at once. */
export const RECOVERY_CODE_COUNT = 10;
/** No 0/o, 1/l/i: read from paper without doubt. 30 symbols. */
const RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789";
const RECOVERY_LENGTH = 16;

/** Ten codes such as `k7mq-x2ph-9drt-wz4c`: 16 symbols of 30 ≈ 78 bits each. */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  const codes = new Set<string>();
  while (codes.size < count) {
    let raw = "";
    for (let i = 0; i < RECOVERY_LENGTH; i++)
      raw += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
    codes.add(raw.replace(/(.{4})(?!$)/g, "$1-"));
  }
  return [...codes];
}

/** The code as stored: lower case, without dashes or spaces; null when it cannot be one. */
export function normaliseRecoveryCode(input: string): string | null {
  const raw = input.toLowerCase().replace(/[\s-]+/g, "");
  if (raw.length !== RECOVERY_LENGTH) return null;
  for (const ch of raw) if (!RECOVERY_ALPHABET.includes(ch)) return null;
  return raw;
}

/**
 * SHA-256 of the normalised code. The codes are random and long (≈78 bits), so a fast hash
 * keeps them as safe as the API keys are kept, and one look-up finds the code.
 */
export function hashRecoveryCode(normalised: string): string {
  return createHash("sha256").update(normalised).digest("hex");
}
