import fc from "fast-check";
import { parseDictionary as reference, serializeDictionary, Token } from "structured-headers";
import { describe, expect, it } from "vitest";
import { FIELD_ALPHABET, mutate, mutation as mutationOf } from "../../test/mutate.js";
import { parseDictionary, StructuredFieldError } from "./structured.js";

/** A parse result as plain data, so the two parsers' answers compare with toEqual. */
function plain(v: unknown): unknown {
  if (v instanceof Map) return [...v].map(([k, x]) => [k, plain(x)]);
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Token) return { token: v.toString() };
  if (v instanceof ArrayBuffer) return { bytes: Buffer.from(v).toString("base64") };
  if (ArrayBuffer.isView(v))
    return { bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  if (typeof v === "number" && Object.is(v, -0)) return 0;
  return v;
}

/** What a parser answers: the value, or that it refused. */
function outcome(parse: (s: string) => unknown, input: string): unknown {
  try {
    return { ok: plain(parse(input)) };
  } catch {
    return "refused";
  }
}

// Structures RFC 8941 can hold, as structured-headers takes them to serialise.
const key = fc.stringMatching(/^[a-z*][a-z0-9_.*-]{0,8}$/);
const bare = fc.oneof(
  fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }),
  fc.integer({ min: -999_999_999_999, max: 999_999_999_999 }).map((n) => n + 0.5),
  fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((d) => Math.round(d * 1000) / 1000),
  fc.string({ maxLength: 16 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
  fc.stringMatching(/^[A-Za-z*][A-Za-z0-9:/!#$%&'*+.^_`|~-]{0,10}$/).map((t) => new Token(t)),
  fc.uint8Array({ maxLength: 24 }).map((b) => b.buffer),
  fc.boolean(),
);
const params = fc
  .uniqueArray(fc.tuple(key, bare), { selector: ([k]) => k, maxLength: 4 })
  .map((entries) => new Map(entries));
const item = fc.tuple(bare, params);
const member = fc.oneof(item, fc.tuple(fc.array(item, { maxLength: 4 }), params));
const dictionary = fc
  .uniqueArray(fc.tuple(key, member), { selector: ([k]) => k, minLength: 1, maxLength: 4 })
  .map((entries) =>
    serializeDictionary(new Map(entries) as Parameters<typeof serializeDictionary>[0]),
  );

const mutation = mutationOf([...FIELD_ALPHABET]);

describe("RFC 8941 dictionaries", () => {
  it("parses what structured-headers serialises, to the same values (property)", () => {
    fc.assert(
      fc.property(dictionary, (field) => {
        expect(outcome(parseDictionary, field)).toEqual(outcome(reference, field));
        expect(outcome(parseDictionary, field)).not.toBe("refused");
      }),
      { numRuns: 2000 },
    );
  });

  it("accepts and refuses what structured-headers does, on mutated fields (property)", () => {
    fc.assert(
      fc.property(
        dictionary,
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (field, edits) => {
          const input = mutate(field, edits);
          expect(outcome(parseDictionary, input)).toEqual(outcome(reference, input));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("agrees on arbitrary strings of the grammar's characters (property)", () => {
    const field = fc
      .array(fc.constantFrom(...FIELD_ALPHABET, "sig1=", '"x"', ":AA==:", "(", ")"), {
        maxLength: 24,
      })
      .map((parts) => parts.join(""));
    fc.assert(
      fc.property(field, (input) => {
        expect(outcome(parseDictionary, input)).toEqual(outcome(reference, input));
      }),
      { numRuns: 5000 },
    );
  });

  it("reads a Signature-Input and its Signature", () => {
    const input = parseDictionary(
      'sig1=("@method" "@target-uri" "content-digest");created=1618884473;keyid="pk_live_0a1b";nonce="n-1";alg="hmac-sha256", sig2=("@method");created=1',
    );
    expect(plain(input)).toEqual([
      [
        "sig1",
        [
          [
            ["@method", []],
            ["@target-uri", []],
            ["content-digest", []],
          ],
          [
            ["created", 1618884473],
            ["keyid", "pk_live_0a1b"],
            ["nonce", "n-1"],
            ["alg", "hmac-sha256"],
          ],
        ],
      ],
      ["sig2", [[["@method", []]], [["created", 1]]]],
    ]);
    const signature = parseDictionary("sig1=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:");
    expect(plain(signature)).toEqual([
      ["sig1", [{ bytes: "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=" }, []]],
    ]);
  });

  it("reads RFC 8941's examples: escapes, decimals, tokens, booleans, bare keys", () => {
    expect(plain(parseDictionary('en="Apple pie", da=:w4ZibGV0w6ZydGU=:'))).toEqual([
      ["en", ["Apple pie", []]],
      ["da", [{ bytes: "w4ZibGV0w6ZydGU=" }, []]],
    ]);
    expect(plain(parseDictionary("a=?0, b, c; foo=bar"))).toEqual([
      ["a", [false, []]],
      ["b", [true, []]],
      ["c", [true, [["foo", { token: "bar" }]]]],
    ]);
    expect(plain(parseDictionary('s="say \\"hi\\" \\\\o/", n=-12.345, t=*foo:/bar'))).toEqual([
      ["s", ['say "hi" \\o/', []]],
      ["n", [-12.345, []]],
      ["t", [{ token: "*foo:/bar" }, []]],
    ]);
  });

  it("refuses what RFC 8941 forbids, saying where", () => {
    for (const bad of [
      "sig1=(",
      'sig1="open',
      "sig1=1,",
      "Sig1=1",
      "sig1=1234567890123456",
      "sig1=1.2345",
      "sig1=1234567890123.5",
      "sig1=1.",
      'sig1="\\x"',
      "sig1=:abc",
      "sig1=:a=b=:",
      "sig1=?2",
      "sig1=@1659578233",
      'sig1=%"caf%c3%a9"',
      "sig1=1 sig2=2",
      "sig1=(1,2)",
    ]) {
      expect(() => parseDictionary(bad), bad).toThrow(StructuredFieldError);
      expect(() => parseDictionary(bad), bad).toThrow(/at offset \d+/);
    }
  });
});
