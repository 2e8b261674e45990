import { createPublicKey, type KeyObject, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { unreadableReason } from "../files.js";

/** A scanner's public key that signs leak reports, under the identifier its reports name. */
export type ReporterKey = { id: string; key: KeyObject };

/**
 * Reads the keys leak reports are verified against: GitHub's published document
 * (`{"public_keys":[{"key_identifier","key","is_current"}]}`) or a bare list of
 * `{key_identifier, key}`. Every key is an ECDSA P-256 public key in PEM. Answers the keys, or
 * what is wrong with the text (for the configuration error naming the variable).
 */
export function parseReporterKeys(
  text: string,
): { ok: true; keys: ReporterKey[] } | { ok: false; problem: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { ok: false, problem: "is not valid JSON" };
  }
  const list = Array.isArray(doc)
    ? doc
    : doc !== null && typeof doc === "object"
      ? (doc as { public_keys?: unknown }).public_keys
      : undefined;
  if (!Array.isArray(list))
    return {
      ok: false,
      problem:
        'must be {"public_keys":[{"key_identifier":"…","key":"-----BEGIN PUBLIC KEY-----…"}]} (the document the scanner publishes) or a list of such entries',
    };
  if (list.length === 0) return { ok: false, problem: "lists no keys" };
  const keys: ReporterKey[] = [];
  for (const [i, entry] of list.entries()) {
    const at = `entry ${i + 1} of ${list.length}`;
    const e = entry as { key_identifier?: unknown; key?: unknown } | null;
    if (
      e === null ||
      typeof e !== "object" ||
      typeof e.key_identifier !== "string" ||
      e.key_identifier.trim() === ""
    )
      return { ok: false, problem: `${at} has no key_identifier` };
    if (typeof e.key !== "string")
      return { ok: false, problem: `${at} has no key (a PEM public key)` };
    let key: KeyObject;
    try {
      key = createPublicKey(e.key);
    } catch {
      return { ok: false, problem: `${at}: key is not a PEM public key` };
    }
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1")
      return { ok: false, problem: `${at}: key must be an ECDSA P-256 public key` };
    const id = e.key_identifier.trim();
    if (keys.some((k) => k.id === id))
      return { ok: false, problem: `${at}: key_identifier ${id} is listed twice` };
    keys.push({ id, key });
  }
  return { ok: true, keys };
}

/** Reads the key document from a file; what is wrong names the file. */
export function readReporterKeyFile(
  path: string,
): { ok: true; keys: ReporterKey[] } | { ok: false; problem: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    return {
      ok: false,
      problem: `names the file ${path}, which cannot be read: ${unreadableReason(err)} (give the key document inline as JSON, or the path of a file holding it)`,
    };
  }
  const parsed = parseReporterKeys(text);
  return parsed.ok ? parsed : { ok: false, problem: `(the file ${path}) ${parsed.problem}` };
}

/** Whether `signature` (base64 DER ECDSA) over `body` verifies with `key` (SHA-256). */
export function verifyReport(key: KeyObject, body: Buffer, signature: string): boolean {
  const sig = Buffer.from(signature, "base64");
  if (sig.length === 0) return false;
  try {
    return verify("sha256", body, { key, dsaEncoding: "der" }, sig);
  } catch {
    return false;
  }
}
