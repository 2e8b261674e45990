import fc from "fast-check";

/**
 * Characters that matter to the structured-field grammar (RFC 8941), to mutate fields with:
 * no "@" or "%", RFC 9651's Date and Display String, which Keygate's parser refuses on purpose.
 */
export const FIELD_ALPHABET = ` \t,;=():"\\?*-._/+0123456789azAZ!#$&'^|~\x7f\x01é`;

export type Edit = [string, number, string];

/** One edit of a string: an insertion, deletion or replacement of one of `pieces`. */
export function mutation(pieces: readonly string[]): fc.Arbitrary<Edit> {
  return fc.tuple(
    fc.constantFrom("insert", "delete", "replace"),
    fc.nat(),
    fc.constantFrom(...pieces),
  );
}

/** `s` with the edits applied in turn, each at its position modulo the string's length. */
export function mutate(s: string, edits: Edit[]): string {
  let out = s;
  for (const [kind, at, c] of edits) {
    const i = out.length === 0 ? 0 : at % (out.length + 1);
    if (kind === "insert") out = out.slice(0, i) + c + out.slice(i);
    else if (kind === "delete") out = out.slice(0, i) + out.slice(i + 1);
    else out = out.slice(0, i) + c + out.slice(i + 1);
  }
  return out;
}
