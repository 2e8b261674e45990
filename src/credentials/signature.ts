import { hash, type KeyObject, timingSafeEqual } from "node:crypto";
import { hmacMatches } from "./hmac.js";
import {
  type BareItem,
  type InnerList,
  type Item,
  type Parameters,
  serializeInnerList,
  serializeItem,
} from "structured-headers";
import { type Member, readCanonicalInput, readCanonicalSignature } from "./canonical.js";
import { parseDictionary } from "./structured.js";

/**
 * RFC 9421 HTTP Message Signatures, `hmac-sha256`, as Keygate verifies them: the
 * `Signature-Input` and `Signature` fields are read as structured fields (RFC 8941), the
 * signature base is rebuilt from the request, and the refusals say what differs. No HTTP
 * framework and no store here: the request comes in as plain values, nonces through a port.
 */

export type SignatureCode =
  "SIGNATURE_REQUIRED" | "SIGNATURE_INVALID" | "SIGNATURE_EXPIRED" | "SIGNATURE_REPLAYED";

/** What the verifier reads of a request. */
export type SignedRequest = {
  method: string;
  /** The target URI as the client addressed it: `https://host:port/path?query`. */
  targetUri: string;
  /** A header's value by lowercase name, repeated fields joined with ", "; undefined if absent. */
  header(name: string): string | undefined;
  /** The raw body as received, when there is one. */
  body?: Uint8Array | null;
};

export type SignatureOptions = {
  /** The key's prefix: the `keyid` a signature must name. */
  keyid: string;
  /** The HMAC key: the signing secret's UTF-8 bytes (or a secret KeyObject holding them). */
  secret: Uint8Array | KeyObject;
  /** The server clock, in ms. */
  now: number;
  /** How far `created` may be from the clock, in seconds (default 300). */
  windowS?: number;
  /** Components every signature must cover (default `@method` and `@target-uri`). */
  required?: readonly string[];
  /** Whether `nonce` is required (default true). */
  requireNonce?: boolean;
  /**
   * Records a nonce for this key until `untilMs`; answers false when it was seen already.
   * Called only for a signature that is otherwise valid.
   */
  nonceFresh?: (nonce: string, untilMs: number) => boolean | Promise<boolean>;
  /** The same as `nonceFresh`, as an object's method (no closure per request). */
  nonces?: { fresh(nonce: string, untilMs: number): boolean | Promise<boolean> };
};

export type SignatureVerdict =
  | { ok: true; label: string; created: number; nonce: string | null }
  | {
      ok: false;
      code: SignatureCode;
      message: string;
      /** On SIGNATURE_INVALID once the base could be built: the base the server computed. */
      base?: string;
      /** On SIGNATURE_EXPIRED: seconds the client's `created` is ahead (+) or behind (−). */
      skewS?: number;
    };

const DEFAULT_REQUIRED = ["@method", "@target-uri"] as const;

class Refusal extends Error {
  constructor(
    readonly code: SignatureCode,
    message: string,
    readonly base?: string,
    readonly skewS?: number,
  ) {
    super(message);
  }
}

const invalid = (message: string, base?: string) => new Refusal("SIGNATURE_INVALID", message, base);

/** The value of one covered component, as the signature base writes it (RFC 9421 §2). */
export function componentValue(name: string, params: Parameters, req: SignedRequest): string {
  if (params.size > 0) {
    throw invalid(
      `component "${name}" has parameters (${[...params.keys()].join(", ")}), which this server does not support; cover the plain component`,
    );
  }
  if (name.startsWith("@")) {
    switch (name) {
      case "@method":
        return req.method.toUpperCase();
      case "@target-uri":
        return req.targetUri;
      case "@authority":
        return parseTarget(req.targetUri).host.toLowerCase();
      case "@scheme":
        return parseTarget(req.targetUri).protocol.slice(0, -1).toLowerCase();
      case "@path": {
        const url = parseTarget(req.targetUri);
        return url.pathname === "" ? "/" : url.pathname;
      }
      case "@query": {
        const url = parseTarget(req.targetUri);
        return url.search === "" ? "?" : url.search;
      }
      case "@request-target": {
        const url = parseTarget(req.targetUri);
        return `${url.pathname}${url.search}`;
      }
      default:
        throw invalid(
          `component "${name}" is not one this server derives (@method, @target-uri, @authority, @scheme, @path, @query, @request-target)`,
        );
    }
  }
  if (name !== name.toLowerCase()) throw invalid(`component "${name}" must be lowercase`);
  const value = req.header(name);
  if (value === undefined) {
    throw invalid(
      `component "${name}" is covered by the signature but the request has no ${name} header`,
    );
  }
  return value.trim();
}

function parseTarget(uri: string): URL {
  try {
    return new URL(uri);
  } catch {
    throw invalid(`the target URI "${uri.slice(0, 200)}" cannot be read`);
  }
}

/** The signature base of `covered` (RFC 9421 §2.5): one line per component, then the parameters. */
export function signatureBase(covered: Member, req: SignedRequest): string {
  let base = "";
  for (let i = 0; i < covered.size; i++) {
    const name = covered.name(i);
    if (typeof name !== "string") throw invalid("each covered component must be a string");
    // Parameters are refused by componentValue; a plain name is its quoted self.
    for (let j = 0; j < i; j++)
      if (covered.name(j) === name) throw invalid(`component "${name}" is covered twice`);
    base += `${quoted(name)}: ${componentValue(name, covered.componentParams(i), req)}\n`;
  }
  return `${base}"@signature-params": ${covered.line()}`;
}

/** A structured-field string as RFC 8941 §4.1.6 writes it; the parser admitted only printable ASCII. */
function quoted(s: string): string {
  return s.includes('"') || s.includes("\\") ? serializeItem(s) : `"${s}"`;
}

/**
 * The inner list as RFC 8941 §4.1 serialises it — the `@signature-params` line. Plain
 * component names with integer and string parameters (what signers send) are written
 * directly; anything else by the library. `signature.test.ts` checks both agree.
 */
export function signatureParams(covered: InnerList): string {
  let out = "(";
  for (const [name, params] of covered[0]) {
    if (typeof name !== "string" || params.size > 0) return serializeInnerList(covered);
    out += out.length === 1 ? quoted(name) : ` ${quoted(name)}`;
  }
  out += ")";
  for (const [key, value] of covered[1]) {
    if (typeof value === "string") out += `;${key}=${quoted(value)}`;
    else if (typeof value === "number" && Number.isInteger(value) && Math.abs(value) < 1e15)
      out += `;${key}=${value}`;
    else return serializeInnerList(covered);
  }
  return out;
}

/** A member read by the general parser. */
class ParsedMember implements Member {
  constructor(
    readonly label: string,
    private readonly inner: InnerList,
  ) {}

  get size(): number {
    return this.inner[0].length;
  }

  name(i: number): BareItem {
    return (this.inner[0][i] as Item)[0];
  }

  componentParams(i: number): Parameters {
    return (this.inner[0][i] as Item)[1];
  }

  param(key: string): BareItem | undefined {
    return this.inner[1].get(key);
  }

  line(): string {
    return signatureParams(this.inner);
  }
}

/** The entry of `Signature-Input` to verify: the one naming this key, else the first. */
function pick(input: Map<string, Item | InnerList>, keyid: string): Member {
  let first: Member | null = null;
  for (const [label, member] of input) {
    if (!Array.isArray(member[0]))
      throw invalid(`Signature-Input member "${label}" is not an inner list of components`);
    const entry = new ParsedMember(label, member as InnerList);
    if (entry.param("keyid") === keyid) return entry;
    first ??= entry;
  }
  if (first === null) throw invalid("Signature-Input holds no signature");
  return first;
}

/** A signature field read as a structured-field dictionary, or the refusal saying it is not one. */
function dictionaryOf(field: string, name: string): Map<string, Item | InnerList> {
  try {
    return parseDictionary(field);
  } catch (err) {
    throw invalid(`${name} is not a structured-field dictionary: ${(err as Error).message}`);
  }
}

function digestOf(body: Uint8Array, algorithm: "sha-256" | "sha-512"): Buffer {
  return hash(algorithm === "sha-256" ? "sha256" : "sha512", body, "buffer");
}

/** Content-Digest (RFC 9530) against the raw body: sha-256 (or sha-512) must match. */
function checkDigest(req: SignedRequest): void {
  const field = req.header("content-digest");
  if (field === undefined)
    throw invalid("the request has a body but no Content-Digest header (RFC 9530, sha-256)");
  let parsed: Map<string, Item | InnerList>;
  try {
    parsed = parseDictionary(field);
  } catch (err) {
    throw invalid(`Content-Digest is not a structured-field dictionary: ${(err as Error).message}`);
  }
  const body = req.body ?? new Uint8Array();
  for (const algorithm of ["sha-256", "sha-512"] as const) {
    const member = parsed.get(algorithm);
    if (member === undefined) continue;
    const value = member[0];
    if (!(value instanceof ArrayBuffer) && !ArrayBuffer.isView(value))
      throw invalid(`Content-Digest ${algorithm} must be a byte sequence (:base64:)`);
    const sent = Buffer.from(
      value instanceof ArrayBuffer ? new Uint8Array(value) : (value as Uint8Array),
    );
    const actual = digestOf(body, algorithm);
    if (sent.length !== actual.length || !timingSafeEqual(sent, actual)) {
      throw invalid(
        `Content-Digest ${algorithm} does not match the body received (${body.length} bytes; its ${algorithm} is :${actual.toString("base64")}:)${body[body.length - 1] === 0x0a ? ": the body ends with a line break, which a body read from a file often brings and a digest taken before it misses" : ""}`,
      );
    }
    return;
  }
  throw invalid("Content-Digest has neither sha-256 nor sha-512");
}

/**
 * Verifies the request's signature, refusing in the contract's order: no signature
 * (`SIGNATURE_REQUIRED`), one that does not verify or covers too little
 * (`SIGNATURE_INVALID`, with the base the server computed), `created` outside the window
 * (`SIGNATURE_EXPIRED`, with the skew), a nonce seen before (`SIGNATURE_REPLAYED`).
 */
export function verifySignature(
  req: SignedRequest,
  o: SignatureOptions,
): SignatureVerdict | Promise<SignatureVerdict> {
  try {
    const verdict = check(req, o);
    return verdict instanceof Promise ? verdict.catch(refused) : verdict;
  } catch (err) {
    return refused(err);
  }
}

function refused(err: unknown): SignatureVerdict {
  if (!(err instanceof Refusal)) throw err;
  return {
    ok: false,
    code: err.code,
    message: err.message,
    ...(err.base === undefined ? {} : { base: err.base }),
    ...(err.skewS === undefined ? {} : { skewS: err.skewS }),
  };
}

/** A plain value unless the nonce store answers with a promise. */
function check(
  req: SignedRequest,
  o: SignatureOptions,
): SignatureVerdict | Promise<SignatureVerdict> {
  const inputField = req.header("signature-input");
  const signatureField = req.header("signature");
  if (inputField === undefined || signatureField === undefined) {
    const missing = [
      inputField === undefined ? "Signature-Input" : "",
      signatureField === undefined ? "Signature" : "",
    ]
      .filter(Boolean)
      .join(" and ");
    throw new Refusal(
      "SIGNATURE_REQUIRED",
      `this key requires signed requests: ${missing} ${missing.includes(" and ") ? "are" : "is"} missing. Sign with RFC 9421 hmac-sha256, keyid "${o.keyid}", covering ${(o.required ?? DEFAULT_REQUIRED).join(", ")} (and content-digest with a body)`,
    );
  }
  // Most signers send one member in canonical form, read without the general parser; the
  // general parser decides everything else (canonical.ts).
  let covered = readCanonicalInput(inputField);
  let sentBytes: Uint8Array | null =
    covered === null ? null : readCanonicalSignature(signatureField, covered.label);
  let signatures: Map<string, Item | InnerList> | null = null;
  if (covered === null) {
    const inputs = dictionaryOf(inputField, "Signature-Input");
    signatures = dictionaryOf(signatureField, "Signature");
    covered = pick(inputs, o.keyid);
  } else if (sentBytes === null) signatures = dictionaryOf(signatureField, "Signature");
  const label = covered.label;
  const keyid = covered.param("keyid");
  if (keyid !== o.keyid) {
    throw invalid(
      keyid === undefined
        ? `signature "${label}" has no keyid; set keyid="${o.keyid}" (the key's prefix)`
        : `signature "${label}" names keyid "${String(keyid)}", not this key's prefix "${o.keyid}"`,
    );
  }
  const alg = covered.param("alg");
  if (alg !== undefined && alg !== "hmac-sha256")
    throw invalid(
      `signature "${label}" has alg "${String(alg)}"; this server verifies hmac-sha256`,
    );
  const hasBody = (req.body?.length ?? 0) > 0;
  const uncovered = uncoveredOf(covered, o.required ?? DEFAULT_REQUIRED, hasBody);
  if (uncovered.length > 0)
    throw invalid(`signature "${label}" must also cover ${uncovered.join(", ")}`);
  const created = covered.param("created");
  if (typeof created !== "number" || !Number.isInteger(created))
    throw invalid(`signature "${label}" needs created, an integer of Unix seconds`);
  const nonce = covered.param("nonce");
  if (nonce !== undefined && typeof nonce !== "string")
    throw invalid(`signature "${label}" has a nonce that is not a string`);
  if ((o.requireNonce ?? true) && nonce === undefined)
    throw invalid(`signature "${label}" needs a nonce: a fresh random string per request`);

  const base = signatureBase(covered, req);
  if (sentBytes === null) {
    const member = (signatures as Map<string, Item | InnerList>).get(label);
    if (member === undefined)
      throw invalid(`Signature has no member "${label}" to match Signature-Input`, base);
    const sent = member[0];
    if (!(sent instanceof ArrayBuffer) && !ArrayBuffer.isView(sent))
      throw invalid(`Signature "${label}" must be a byte sequence (:base64:)`, base);
    sentBytes = sent instanceof ArrayBuffer ? new Uint8Array(sent) : (sent as Uint8Array);
  }
  const given = sentBytes;
  if (!hmacMatches(o.secret, base, given)) {
    throw invalid(
      `signature "${label}" does not match: compare your signature base with the one this server computed (in details), and check the secret`,
      base,
    );
  }
  if (hasBody) checkDigest(req);

  const windowS = o.windowS ?? 300;
  const skewS = created - Math.floor(o.now / 1000);
  if (Math.abs(skewS) > windowS) {
    throw new Refusal(
      "SIGNATURE_EXPIRED",
      `signature "${label}" was created ${Math.abs(skewS)} s ${skewS > 0 ? "ahead of" : "before"} this server's clock; it must be within ${windowS} s — sign each request when it is sent, and check the client's clock`,
      undefined,
      skewS,
    );
  }
  const expires = covered.param("expires");
  if (typeof expires === "number" && expires * 1000 < o.now) {
    throw new Refusal(
      "SIGNATURE_EXPIRED",
      `signature "${label}" expired at ${new Date(expires * 1000).toISOString()}`,
      undefined,
      skewS,
    );
  }
  const ok: SignatureVerdict = {
    ok: true,
    label,
    created,
    nonce: typeof nonce === "string" ? nonce : null,
  };
  if (typeof nonce !== "string" || (!o.nonces && !o.nonceFresh)) return ok;
  const until = (created + windowS) * 1000;
  const fresh = o.nonces ? o.nonces.fresh(nonce, until) : (o.nonceFresh?.(nonce, until) ?? true);
  if (fresh instanceof Promise) {
    return fresh.then((f) => {
      if (!f) throw replayed(nonce);
      return ok;
    });
  }
  if (!fresh) throw replayed(nonce);
  return ok;
}

function replayed(nonce: string): Refusal {
  return new Refusal(
    "SIGNATURE_REPLAYED",
    `nonce "${nonce.slice(0, 64)}" was already used with this key: a signed request is accepted once; send a fresh nonce with each request`,
  );
}

/** The required components the signature does not cover (plain loops: this runs per request). */
function uncoveredOf(covered: Member, required: readonly string[], hasBody: boolean): string[] {
  const missing: string[] = [];
  const want = hasBody ? [...required, "content-digest"] : required;
  for (const r of want) {
    let found = false;
    for (let i = 0; i < covered.size; i++) if (covered.name(i) === r) found = true;
    if (!found) missing.push(r);
  }
  return missing;
}
