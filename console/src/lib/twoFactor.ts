/** A code as an authenticator app shows it ("123 456" too): its 6 digits, or null. */
export function codeDigits(typed: string): string | null {
  const digits = typed.replace(/\s+/g, "");
  return /^\d{6}$/.test(digits) ? digits : null;
}
