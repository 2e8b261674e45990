import fc from "fast-check";
import {
  type InnerList,
  parseDictionary as reference,
  serializeInnerList,
} from "structured-headers";
import { describe, expect, it } from "vitest";
import { FIELD_ALPHABET, mutate, mutation as mutationOf } from "../../test/mutate.js";
import { type Member, readCanonicalInput, readCanonicalSignature } from "./canonical.js";

/** A member as plain data: label, components with their parameters, parameters, line. */
function plainMember(m: Member, keys: readonly string[]) {
  const components = [];
  for (let i = 0; i < m.size; i++) components.push([m.name(i), [...m.componentParams(i)]]);
  return { label: m.label, components, params: keys.map((k) => [k, m.param(k)]), line: m.line() };
}

/** The field as structured-headers reads it when it holds one member, or why it does not. */
function referenceSingle(field: string): ReturnType<typeof reference> | string {
  let dict: ReturnType<typeof reference>;
  try {
    dict = reference(field);
  } catch {
    return "refused";
  }
  return dict.size === 1 ? dict : "not one member";
}

/**
 * The same as structured-headers (written by others) reads it, when the field is one member
 * holding an inner list: what the canonical reader must answer, if it answers at all.
 */
function referenceMember(field: string, keys: readonly string[]) {
  const dict = referenceSingle(field);
  if (typeof dict === "string") return dict;
  const [label, member] = [...dict][0] as [string, InnerList];
  if (!Array.isArray(member[0])) return "not an inner list";
  return {
    label,
    components: member[0].map(([name, params]) => [name, [...params]]),
    params: keys.map((k) => [k, member[1].get(k)]),
    line: serializeInnerList(member),
  };
}

const KEYS = ["created", "expires", "nonce", "keyid", "alg", "tag", "x"] as const;

// Signature-Input fields as signers write them: canonical, one member.
const label = fc.stringMatching(/^[a-z*][a-z0-9_.*-]{0,6}$/);
// Strings with a quote or backslash serialise with escapes, which the reader leaves to the
// general parser (tested below); signers' names, key ids and nonces hold neither.
const printable = fc
  .string({ maxLength: 14 })
  .filter((s) => /^[\x20-\x7e]*$/.test(s) && !/["\\]/.test(s));
const component = fc.oneof(
  fc.constantFrom("@method", "@target-uri", "@authority", "@path", "content-digest", "date"),
  printable,
);
const value = fc.oneof(
  fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }),
  printable,
);
const canonicalInput = fc
  .tuple(
    label,
    fc.array(component, { maxLength: 5 }),
    fc.uniqueArray(fc.tuple(fc.constantFrom(...KEYS), value), {
      selector: ([k]) => k,
      maxLength: 6,
    }),
  )
  .map(([l, names, params]) => {
    const inner: InnerList = [names.map((n) => [n, new Map()]), new Map(params)];
    return `${l}=${serializeInnerList(inner)}`;
  });

const mutation = mutationOf([...FIELD_ALPHABET, "sig1=", ";created=", "(", ")", '"', ":"]);

describe("canonical Signature-Input", () => {
  it("reads every canonical single member as structured-headers does, its line included (property)", () => {
    fc.assert(
      fc.property(canonicalInput, (field) => {
        const m = readCanonicalInput(field);
        expect(m, field).not.toBeNull();
        expect(plainMember(m as Member, KEYS)).toEqual(referenceMember(field, KEYS));
        expect((m as Member).line()).toBe(field.slice(field.indexOf("=") + 1));
      }),
      { numRuns: 3000 },
    );
  });

  it("on mutated fields, answers null or exactly what structured-headers reads (property)", () => {
    let read = 0;
    fc.assert(
      fc.property(
        canonicalInput,
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        (field, edits) => {
          const input = mutate(field, edits);
          const m = readCanonicalInput(input);
          if (m === null) return;
          read++;
          // Anything it reads, the general grammar reads the same way, and serialises back
          // to the very text the reader took as the signature-params line.
          expect(plainMember(m, KEYS)).toEqual(referenceMember(input, KEYS));
          expect(input).toBe(`${m.label}=${m.line()}`);
        },
      ),
      { numRuns: 6000 },
    );
    // Some mutations leave a canonical field (a changed letter in a string, say).
    expect(read).toBeGreaterThan(100);
  });

  it("leaves to the general parser what is not canonical", () => {
    const base = 'sig1=("@method" "@target-uri");created=1;keyid="k";nonce="n"';
    expect(readCanonicalInput(base)).not.toBeNull();
    for (const field of [
      'sig1=( "@method" "@target-uri");created=1', // white space inside the list
      'sig1=("@method"  "@target-uri");created=1',
      'sig1=("@method");created=1, sig2=("@method");created=2', // two members
      'sig1=("@method");created=01', // a leading zero
      'sig1=("@method");created=-0',
      'sig1=("@method");created=1.5', // a decimal
      'sig1=("@method");created=1;created=2', // a parameter twice
      'sig1=("@method");tag="a";tag="b"',
      'sig1=("@method");alg=hmac', // a token
      'sig1=("@method");x', // a boolean parameter
      'sig1=("@method";req);created=1', // a parameter on a component
      'sig1=("@me\\"thod");created=1', // an escape
      'sig1=("@method");created=1234567890123456', // 16 digits
      'Sig1=("@method")', // a label not in lowercase
      "sig1=:AAAA:",
      'sig1=("@method") ',
    ]) {
      expect(readCanonicalInput(field), field).toBeNull();
    }
  });

  it("reads the empty list, and keeps parameters it does not check", () => {
    const m = readCanonicalInput('sig1=();tag="app";created=5') as Member;
    expect(m.size).toBe(0);
    expect(m.param("tag")).toBe("app");
    expect(m.param("created")).toBe(5);
    expect(m.param("missing")).toBeUndefined();
    expect(m.line()).toBe('();tag="app";created=5');
  });
});

// Signature fields: one member, a byte sequence.
const signature = fc
  .tuple(label, fc.uint8Array({ maxLength: 48 }))
  .map(([l, bytes]) => `${l}=:${Buffer.from(bytes).toString("base64")}:`);

/** The bytes structured-headers reads for `label`, or why it reads none. */
function referenceBytes(field: string, want: string): string {
  const dict = referenceSingle(field);
  if (typeof dict === "string") return dict;
  const member = dict.get(want);
  if (member === undefined) return "no such label";
  if (!(member[0] instanceof ArrayBuffer) || member[1].size > 0) return "not plain bytes";
  return Buffer.from(member[0]).toString("base64");
}

describe("canonical Signature", () => {
  it("reads every single byte sequence as structured-headers does (property)", () => {
    fc.assert(
      fc.property(signature, (field) => {
        const l = field.slice(0, field.indexOf("="));
        const bytes = readCanonicalSignature(field, l);
        expect(bytes, field).not.toBeNull();
        expect(Buffer.from(bytes as Buffer).toString("base64")).toBe(referenceBytes(field, l));
      }),
      { numRuns: 3000 },
    );
  });

  it("on mutated fields, answers null or exactly the bytes structured-headers reads (property)", () => {
    fc.assert(
      fc.property(signature, fc.array(mutation, { minLength: 1, maxLength: 3 }), (field, edits) => {
        const l = field.slice(0, Math.max(0, field.indexOf("=")));
        const input = mutate(field, edits);
        const bytes = readCanonicalSignature(input, l);
        if (bytes === null) return;
        expect(Buffer.from(bytes).toString("base64")).toBe(referenceBytes(input, l));
      }),
      { numRuns: 6000 },
    );
  });

  it("answers null for another label, parameters, several members or stray base64", () => {
    const b64 = Buffer.alloc(32, 7).toString("base64");
    expect(readCanonicalSignature(`sig1=:${b64}:`, "sig1")).not.toBeNull();
    expect(readCanonicalSignature(`sig2=:${b64}:`, "sig1")).toBeNull();
    expect(readCanonicalSignature(`sig1=:${b64}:;x=1`, "sig1")).toBeNull();
    expect(readCanonicalSignature(`sig1=:${b64}:, sig2=:${b64}:`, "sig1")).toBeNull();
    expect(readCanonicalSignature(`sig1=:${b64.slice(0, -2)}=A:`, "sig1")).toBeNull();
    expect(readCanonicalSignature("sig1=:A:", "sig1")).toBeNull();
    expect(readCanonicalSignature("sig10=:AAAA:", "sig1")).toBeNull();
  });

  it("writes a 32-byte signature into a kept buffer, and others into their own", () => {
    const a = Buffer.alloc(32, 1).toString("base64");
    const b = Buffer.alloc(32, 2).toString("base64");
    const first = readCanonicalSignature(`sig1=:${a}:`, "sig1") as Buffer;
    expect(first[0]).toBe(1);
    const second = readCanonicalSignature(`sig1=:${b}:`, "sig1") as Buffer;
    expect(second[0]).toBe(2);
    expect(second).toBe(first);
    const long = readCanonicalSignature(`sig1=:${Buffer.alloc(33, 3).toString("base64")}:`, "sig1");
    expect(long?.length).toBe(33);
    expect(long).not.toBe(first);
  });
});
