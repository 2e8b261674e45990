import { createHash, randomBytes } from "node:crypto";
import { createSigner, httpbis } from "http-message-signatures";
import { DISPLAY_PREFIX_LENGTH, environmentOf, isWellFormedKey } from "../keys/format.js";
import {
  type Command,
  type Io,
  printable,
  readSecretFile,
  UsageError,
  type Values,
} from "./command.js";

/** A signing secret as Keygate mints it: the environment's prefix and 64 lowercase hex. */
const SECRET_SHAPE = /^pks_(live|test)_[0-9a-f]{64}$/;

/** What `keygate sign` signs: one request, as curl will send it. */
export type SignRequest = {
  key: string;
  secret: string;
  method: string;
  /** The absolute URL, exactly as the request addresses it: what `@target-uri` covers. */
  url: string;
  /** The body's exact text, sent as its UTF-8 bytes; undefined for none. */
  body?: string;
  /** Unix ms for `created` (default now). */
  now?: number;
  /** The nonce (default 16 random bytes, base64url). */
  nonce?: string;
};

/** The headers a signed request adds, in the order they are printed. */
export type SignatureHeaders = {
  "Content-Digest"?: string;
  "Signature-Input": string;
  Signature: string;
};

/**
 * Signs one request as Keygate verifies it (RFC 9421): hmac-sha256 keyed with the UTF-8 bytes
 * of the whole signing secret, keyid the key's prefix, params created, keyid, alg and nonce,
 * covering "@method" "@target-uri" and, with a body, "content-digest" (RFC 9530, sha-256).
 */
export async function signRequest(r: SignRequest): Promise<SignatureHeaders> {
  const headers: Record<string, string> = {};
  if (r.body !== undefined) {
    const digest = createHash("sha256").update(Buffer.from(r.body, "utf8")).digest("base64");
    headers["content-digest"] = `sha-256=:${digest}:`;
  }
  const signed = await httpbis.signMessage(
    {
      key: createSigner(
        Buffer.from(r.secret, "utf8"),
        "hmac-sha256",
        r.key.slice(0, DISPLAY_PREFIX_LENGTH),
      ),
      fields: ["@method", "@target-uri", ...(r.body === undefined ? [] : ["content-digest"])],
      params: ["created", "keyid", "alg", "nonce"],
      paramValues: {
        created: new Date(r.now ?? Date.now()),
        nonce: r.nonce ?? randomBytes(16).toString("base64url"),
      },
    },
    { method: r.method, url: r.url, headers },
  );
  const header = (name: string): string => {
    const entry = Object.entries(signed.headers).find(([k]) => k.toLowerCase() === name);
    const value = entry?.[1];
    return Array.isArray(value) ? value.join(", ") : String(value);
  };
  return {
    ...(r.body === undefined ? {} : { "Content-Digest": headers["content-digest"] as string }),
    "Signature-Input": header("signature-input"),
    Signature: header("signature"),
  };
}

/** A word for a POSIX shell, in single quotes. */
function quote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A curl command that sends exactly the request that was signed. */
export function curlCommand(r: SignRequest, signature: SignatureHeaders): string {
  const hasBody = r.body !== undefined;
  const lines = [`curl -sS${r.method === "HEAD" ? " --head" : ""} ${quote(r.url)}`];
  // curl infers GET, and POST for a body; any other method is named.
  const inferred = r.method === "HEAD" || (hasBody ? r.method === "POST" : r.method === "GET");
  if (!inferred) lines.push(`-X ${quote(r.method)}`);
  const headers: [string, string][] = [["X-API-Key", r.key]];
  if (hasBody) headers.push(["Content-Type", "application/json"]);
  headers.push(...(Object.entries(signature) as [string, string][]));
  for (const [name, value] of headers) lines.push(`-H ${quote(`${name}: ${value}`)}`);
  if (hasBody) lines.push(`--data-binary ${quote(r.body as string)}`);
  return lines.join(" \\\n  ");
}

/** The text of a --key-file or --secret-file: one line, trimmed; warns when others may read it. */
function readOneLine(flag: string, file: string, what: string, io: Io): string {
  const text = readSecretFile(flag, file, what, io);
  const value = text.trim();
  if (value === "")
    throw new UsageError(`${flag} ${printable(file)} is empty; put the ${what} in it`);
  if (/[\r\n]/.test(value))
    throw new UsageError(
      `${flag} ${printable(file)} holds more than one line; put the ${what} alone in it`,
    );
  return value;
}

/** The value of `--name` or the text of `--name-file`, exactly one of them. */
function oneOf(values: Values, name: string, what: string, io: Io): string {
  const direct = values[name] as string | undefined;
  const file = values[`${name}-file`] as string | undefined;
  if (direct !== undefined && file !== undefined)
    throw new UsageError(`give --${name} or --${name}-file, not both`);
  if (direct !== undefined) return direct.trim();
  if (file !== undefined) return readOneLine(`--${name}-file`, file, what, io);
  throw new UsageError(
    `sign needs --${name} <${what.replace(/ /g, "-")}> or --${name}-file <path>`,
  );
}

/** The URL as a request line carries it: absolute http(s), no fragment, no credentials. */
function targetUrl(raw: string | undefined, io: Io): string {
  if (raw === undefined)
    throw new UsageError(
      "sign needs --url <url>, the full address, such as http://localhost:8080/api/v1/external/whoami",
    );
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {
    // refused below
  }
  if (url === null || !["http:", "https:"].includes(url.protocol)) {
    throw new UsageError(
      `--url "${printable(raw)}" is not an absolute http:// or https:// URL; give the full address the request goes to, such as http://localhost:8080/api/v1/external/whoami`,
    );
  }
  if (url.username !== "" || url.password !== "")
    throw new UsageError("--url holds a user name or password; leave them out");
  if (raw.includes("#"))
    throw new UsageError("--url holds a #fragment, which no request carries; leave it out");
  // @target-uri is the URL as the server rebuilds it from the request: sign the normal form.
  if (url.href !== raw) {
    io.err(
      `keygate: warning: signed the URL as ${printable(url.href)}; request exactly that URL, or the signature will not verify\n`,
    );
  }
  return url.href;
}

export const sign: Command = {
  name: "sign",
  summary: "print RFC 9421 signature headers for one request, or a curl command",
  synopsis:
    "(--key <key> | --key-file <path>) (--secret <secret> | --secret-file <path>) --url <url> [--method <method>] [--data <body>] [--curl]",
  help: `Signs one request the way Keygate verifies a key with request signing on, for
trying a signed key with curl. It prints the headers to add, one "Name: value"
line each, which curl -H @- reads from its standard input:

  Content-Digest    sha-256 of the exact body bytes (only with --data)
  Signature-Input   what is covered: "@method" "@target-uri" (and
                    "content-digest" with a body); created (now), keyid
                    (the key's first 12 characters), alg hmac-sha256, and
                    a random nonce
  Signature         the hmac-sha256, keyed with the signing secret's bytes

The key and the secret are never printed in this form: send the key yourself in
X-API-Key, and with a body Content-Type: application/json. --curl prints one
whole curl command instead, which does hold the key and the signature (not the
secret). Each signature is good for one request within 300 s: the nonce is
accepted once. Nothing is sent and no database is needed.

Options:
  --key <key>            the API key (pk_live_ or pk_test_ + 32 hex)
  --key-file <path>      read the key from this file instead
  --secret <secret>      the key's signing secret (pks_live_ or pks_test_ + 64 hex)
  --secret-file <path>   read the secret from this file instead (--key and --secret
                         show in shell history and ps; the file forms do not)
  --url <url>            the full URL the request goes to, query included, such as
                         http://localhost:8080/api/v1/external/whoami
  --method <method>      the HTTP method; default GET, or POST with --data (as curl)
  --data <body>          the request body, sent exactly as given (curl --data-binary)
  --curl                 print a ready-to-run curl command instead of the headers

Examples:
  keygate sign --key-file key.txt --secret-file secret.txt \\
    --url http://localhost:8080/api/v1/external/whoami | curl -sS -H @- \\
    -H "X-API-Key: $(cat key.txt)" http://localhost:8080/api/v1/external/whoami
  keygate sign --key-file key.txt --secret-file secret.txt --method POST \\
    --url http://localhost:8080/api/v1/external/subscribers --data '{"username":"a1"}' --curl`,
  options: {
    key: { type: "string" },
    "key-file": { type: "string" },
    secret: { type: "string" },
    "secret-file": { type: "string" },
    method: { type: "string" },
    url: { type: "string" },
    data: { type: "string" },
    curl: { type: "boolean" },
  },
  args: [],
  async run(values, _args, io) {
    const key = oneOf(values, "key", "key", io);
    if (!isWellFormedKey(key))
      throw new UsageError(
        SECRET_SHAPE.test(key)
          ? "the key is not an API key but a signing secret (pks_): --key takes the API key, pk_live_ or pk_test_ and 32 lowercase hex characters, and --secret the signing secret; were the two swapped?"
          : "the key is not an API key: pk_live_ or pk_test_ and 32 lowercase hex characters",
      );
    const secret = oneOf(values, "secret", "signing secret", io);
    const shape = SECRET_SHAPE.exec(secret);
    if (shape === null)
      throw new UsageError(
        isWellFormedKey(secret)
          ? `the signing secret is not one but an API key (pk_): --secret takes the key's signing secret, pks_live_ or pks_test_ and 64 lowercase hex characters, shown once beside the key when it was minted`
          : "the signing secret is not one: pks_live_ or pks_test_ and 64 lowercase hex characters, as shown when the key was minted",
      );
    if (shape[1] !== environmentOf(key))
      throw new UsageError(
        `the signing secret is a ${shape[1]} secret (pks_${shape[1]}_) but the key is a ${environmentOf(key)} key: use the secret minted with this key`,
      );
    const body = values.data as string | undefined;
    // As curl does: a body without a method is a POST (curl --data-binary sends one).
    const rawMethod =
      (values.method as string | undefined) ?? (body === undefined ? "GET" : "POST");
    if (!/^[A-Za-z]{1,20}$/.test(rawMethod))
      throw new UsageError(
        `--method must be an HTTP method such as GET, POST, PUT or DELETE (got "${printable(rawMethod)}")`,
      );
    const method = rawMethod.toUpperCase();
    if (body !== undefined && (method === "GET" || method === "HEAD"))
      io.err(
        `keygate: warning: signed a ${method} with a body; curl --data-binary sends a POST unless told -X ${method}, and a body usually goes with --method POST or PUT\n`,
      );
    const url = targetUrl(values.url as string | undefined, io);
    const request: SignRequest = {
      key,
      secret,
      method,
      url,
      ...(body === undefined ? {} : { body }),
    };
    const signature = await signRequest(request);
    if (values.curl) {
      io.out(`${curlCommand(request, signature)}\n`);
      return;
    }
    io.out(
      Object.entries(signature)
        .map(([name, value]) => `${name}: ${value}\n`)
        .join(""),
    );
  },
};
