import type { BareItem, Parameters } from "structured-headers";
import { base64Fault, keyEnd, NO_PARAMETERS } from "./structured.js";

/**
 * The two signature fields as nearly every signer writes them, read in one pass without the
 * general parser's maps and arrays. RFC 9421's `@signature-params` line is the canonical
 * serialisation of the `Signature-Input` member (RFC 8941 §4.1), and a signer that built its
 * base correctly sends that same text; when the field is a single member already in canonical
 * form, the line is a slice of it and nothing needs rebuilding.
 *
 * Both readers answer null for anything else (several members, white space, escapes, decimals,
 * tokens, booleans, byte sequences, a repeated parameter, parameters on a component): the
 * general parser (`structured.ts`) then reads the field and decides, so the two paths accept
 * and refuse the same requests (`canonical.test.ts` holds them to it).
 */

/**
 * One `Signature-Input` member as the signature checks read it, whichever reader made it:
 * the covered components (each a bare item with its parameters), the member's parameters,
 * and its `@signature-params` line.
 */
export interface Member {
  readonly label: string;
  /** How many components it covers. */
  readonly size: number;
  name(i: number): BareItem;
  componentParams(i: number): Parameters;
  param(key: string): BareItem | undefined;
  /** The canonical serialisation of the member (RFC 8941 §4.1): the `@signature-params` line. */
  line(): string;
}

/** A `Signature-Input` of one member in canonical form: plain names, integer and string parameters. */
class CanonicalMember implements Member {
  created: number | string | undefined = undefined;
  expires: number | string | undefined = undefined;
  nonce: number | string | undefined = undefined;
  keyid: number | string | undefined = undefined;
  alg: number | string | undefined = undefined;
  /** Parameters other than the five the checks read (none, from most signers). */
  others: Parameters | null = null;

  constructor(
    readonly label: string,
    private readonly names: string[],
    private readonly text: string,
  ) {}

  get size(): number {
    return this.names.length;
  }

  name(i: number): BareItem {
    return this.names[i] as string;
  }

  componentParams(): Parameters {
    return NO_PARAMETERS;
  }

  param(key: string): BareItem | undefined {
    switch (key) {
      case "created":
        return this.created;
      case "expires":
        return this.expires;
      case "nonce":
        return this.nonce;
      case "keyid":
        return this.keyid;
      case "alg":
        return this.alg;
      default:
        return this.others?.get(key);
    }
  }

  line(): string {
    return this.text;
  }
}

const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

/** What a string may hold without an escape: printable ASCII but DQUOTE and backslash. */
const PLAIN_CHAR = new Uint8Array(128);
for (let c = 0x20; c <= 0x7e; c++) if (c !== DQUOTE && c !== BACKSLASH) PLAIN_CHAR[c] = 1;

/** The end of the plain string (no escapes) whose opening quote is at `i`, past its closing quote, or -1. */
function stringEnd(s: string, i: number): number {
  let j = i + 1;
  for (let c = s.charCodeAt(j); c < 128 && PLAIN_CHAR[c] === 1; c = s.charCodeAt(++j));
  return s.charCodeAt(j) === DQUOTE ? j + 1 : -1;
}

/** The end of the canonical integer at `i` ("0", or an optional "-" and 1–15 digits not led by 0), or -1. */
function integerEnd(s: string, i: number): number {
  let j = s.charCodeAt(i) === 0x2d ? i + 1 : i;
  const first = s.charCodeAt(j);
  if (first === 0x30) return j === i && !isDigitAt(s, j + 1) ? j + 1 : -1;
  const from = j;
  while (isDigitAt(s, j)) j++;
  return j === from || j - from > 15 ? -1 : j;
}

function isDigitAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0x30 && c <= 0x39;
}

/** The parameters the checks read, each a bit in `readCanonicalInput`'s record of those seen. */
const KNOWN = ["created", "keyid", "alg", "nonce", "expires"];

/** Which of KNOWN the key at `from`..`to` is (its bit), or -1: compared in place, not sliced. */
function knownAt(s: string, from: number, to: number): number {
  for (let b = 0; b < KNOWN.length; b++) {
    const k = KNOWN[b] as string;
    if (k.length === to - from && s.startsWith(k, from)) return b;
  }
  return -1;
}

/** Reads a `Signature-Input` that is one member in canonical form; null for anything else. */
export function readCanonicalInput(s: string): Member | null {
  const labelEnd = keyEnd(s, 0);
  if (labelEnd === -1 || s.charCodeAt(labelEnd) !== 0x3d || s.charCodeAt(labelEnd + 1) !== 0x28)
    return null;
  const names: string[] = [];
  let i = labelEnd + 2;
  if (s.charCodeAt(i) !== 0x29) {
    for (;;) {
      if (s.charCodeAt(i) !== DQUOTE) return null;
      const end = stringEnd(s, i);
      if (end === -1) return null;
      names.push(s.slice(i + 1, end - 1));
      i = end;
      const c = s.charCodeAt(i);
      if (c === 0x29) break;
      if (c !== 0x20) return null;
      i++;
    }
  }
  i++; // )
  const out = new CanonicalMember(s.slice(0, labelEnd), names, s.slice(labelEnd + 1));
  // A repeated parameter keeps its last value in its first place when serialised: not canonical.
  let seen = 0;
  while (i < s.length) {
    if (s.charCodeAt(i) !== 0x3b) return null;
    const i0 = i;
    const end = keyEnd(s, i + 1);
    if (end === -1 || s.charCodeAt(end) !== 0x3d) return null;
    const bit = knownAt(s, i + 1, end);
    let value: number | string;
    i = end + 1;
    if (s.charCodeAt(i) === DQUOTE) {
      const stop = stringEnd(s, i);
      if (stop === -1) return null;
      value = s.slice(i + 1, stop - 1);
      i = stop;
    } else {
      const stop = integerEnd(s, i);
      if (stop === -1) return null;
      value = Number(s.slice(i, stop));
      i = stop;
    }
    if (bit === -1) {
      const key = s.slice(i0 + 1, end);
      if (out.others?.has(key)) return null;
      (out.others ??= new Map()).set(key, value);
    } else {
      if ((seen & (1 << bit)) !== 0) return null;
      seen |= 1 << bit;
      if (bit === 0) out.created = value;
      else if (bit === 1) out.keyid = value;
      else if (bit === 2) out.alg = value;
      else if (bit === 3) out.nonce = value;
      else out.expires = value;
    }
  }
  return out;
}

/**
 * The bytes of a `Signature` that is one member, `label=:base64:`, with no parameters, and
 * base64 as the general parser admits it; null for anything else (or another label). The
 * bytes of a 32-byte signature are written into a buffer kept here and overwritten by the next
 * call: read them before reading another signature.
 */
export function readCanonicalSignature(s: string, label: string): Buffer | null {
  const n = label.length;
  if (!s.startsWith(label) || s.charCodeAt(n) !== 0x3d || s.charCodeAt(n + 1) !== 0x3a) return null;
  const start = n + 2;
  const end = s.length - 1;
  if (end < start || s.charCodeAt(end) !== 0x3a) return null;
  if (base64Fault(s, start, end) !== -1) return null;
  const b64 = s.slice(start, end);
  if (Buffer.byteLength(b64, "base64") !== MAC_BYTES) return Buffer.from(b64, "base64");
  // An HMAC-SHA256's length, the one a matching signature has: decoded into a kept buffer,
  // which the caller reads before it reads another signature.
  kept.write(b64, "base64");
  return kept;
}

const MAC_BYTES = 32;
const kept = Buffer.alloc(MAC_BYTES);
