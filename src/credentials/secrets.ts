import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/**
 * Signing secrets at rest: AES-256-GCM under the key-encryption key (`KEYGATE_MASTER_KEY`).
 * A sealed secret reads `v1.<kek id>.<iv>.<ciphertext and tag>` (base64url), the kek id being
 * the first 8 hex of the key-encryption key's SHA-256, so a rotation can tell which key sealed
 * what. The associated data binds a sealed secret to its API key: a blob copied onto another
 * key's row does not open.
 */

const VERSION = "v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The short, public name of a key-encryption key. */
export function kekId(kek: Uint8Array): string {
  return createHash("sha256").update(kek).digest("hex").slice(0, 8);
}

/**
 * A 32-byte key from its text: 64 hex characters, or base64 (standard or url-safe) of 32
 * bytes. Null when it is neither; the caller names the setting.
 */
export function parseMasterKey(text: string): Buffer | null {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, "hex");
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const bytes = Buffer.from(t.replace(/-/g, "+").replace(/_/g, "/"), "base64");
    if (bytes.length === 32) return bytes;
  }
  return null;
}

export function sealSecret(secret: string, kek: Uint8Array, boundTo: string): string {
  if (kek.length !== 32) throw new Error("the key-encryption key must be 32 bytes");
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", kek, iv);
  cipher.setAAD(Buffer.from(boundTo, "utf8"));
  const body = Buffer.concat([cipher.update(secret, "utf8"), cipher.final(), cipher.getAuthTag()]);
  return [VERSION, kekId(kek), iv.toString("base64url"), body.toString("base64url")].join(".");
}

export class SealError extends Error {}

/** The secret a sealed value holds; throws SealError when it was sealed otherwise or altered. */
export function openSecret(sealed: string, kek: Uint8Array, boundTo: string): string {
  const parts = sealed.split(".");
  if (parts.length !== 4 || parts[0] !== VERSION) throw new SealError("not a sealed secret");
  const [, id, ivText, bodyText] = parts as [string, string, string, string];
  if (id !== kekId(kek)) {
    throw new SealError(`sealed under another master key (${id}), not this one (${kekId(kek)})`);
  }
  const iv = Buffer.from(ivText, "base64url");
  const body = Buffer.from(bodyText, "base64url");
  if (iv.length !== IV_BYTES || body.length < TAG_BYTES)
    throw new SealError("truncated sealed secret");
  const decipher = createDecipheriv("aes-256-gcm", kek, iv);
  decipher.setAAD(Buffer.from(boundTo, "utf8"));
  decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(body.subarray(0, body.length - TAG_BYTES)),
      decipher.final(),
    ]).toString("utf8");
  } catch {
    throw new SealError("the sealed secret does not open: altered, or bound to another key");
  }
}

/** The id of the master key a sealed value names, to find what a rotation must re-seal. */
export function sealedUnder(sealed: string): string | null {
  const parts = sealed.split(".");
  return parts.length === 4 && parts[0] === VERSION ? (parts[1] as string) : null;
}

/**
 * The master keys a server holds: the current one, which seals, and earlier ones kept during a
 * rotation, which only open. A sealed value names the key it was sealed under (its kek id),
 * so it is opened with that one, whichever it is.
 */
/** What a key's signing secret is bound to when sealed (its hash): it opens for that key only. */
export const secretBinding = (keyHash: string) => `api_key:${keyHash}`;
/** What a token-signing key's private half is bound to when sealed. */
export const tokenKeyBinding = (kid: string) => `oauth_signing_key:${kid}`;
/** A token-signing key made before a master key was set: its private JWK in the clear. */
export const isPlain = (stored: string) => stored.startsWith("{");

export class MasterKeyring {
  /** The current key's id: what everything is sealed under once a rotation is done. */
  readonly currentId: string;
  private readonly byId: Map<string, Uint8Array>;

  constructor(
    private readonly current: Uint8Array,
    previous: readonly Uint8Array[] = [],
  ) {
    this.currentId = kekId(current);
    this.byId = new Map([
      ...previous.map((k) => [kekId(k), k] as const),
      [this.currentId, current],
    ]);
  }

  /** The ids of the earlier keys this ring still opens with. */
  get previousIds(): string[] {
    return [...this.byId.keys()].filter((id) => id !== this.currentId);
  }

  /** Seals under the current key. */
  seal(secret: string, boundTo: string): string {
    return sealSecret(secret, this.current, boundTo);
  }

  /** Opens with the key the value names; a SealError saying which key that is when none matches. */
  open(sealed: string, boundTo: string): string {
    const id = sealedUnder(sealed);
    if (id === null) throw new SealError("not a sealed secret");
    const kek = this.byId.get(id);
    if (kek === undefined) {
      const previous = this.previousIds;
      throw new SealError(
        `sealed under master key ${id}, which this server does not have (KEYGATE_MASTER_KEY is ${this.currentId}; KEYGATE_MASTER_KEY_PREVIOUS ${previous.length === 0 ? "is not set" : `holds ${previous.join(", ")}`})`,
      );
    }
    return openSecret(sealed, kek, boundTo);
  }

  /** Whether a sealed value is sealed under the current key already. */
  isCurrent(sealed: string): boolean {
    return sealedUnder(sealed) === this.currentId;
  }

  /**
   * The value sealed under the current key: itself when it already is, else opened with the
   * key it names and sealed anew. Throws SealError when it does not open.
   */
  reseal(sealed: string, boundTo: string): string {
    return this.isCurrent(sealed) ? sealed : this.seal(this.open(sealed, boundTo), boundTo);
  }
}
