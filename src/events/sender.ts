import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import { guardedLookup, refusedAddress } from "./ssrf.js";

/** What one attempt got: a 2xx is a success; anything else (a 3xx too) a failure that says why. */
export type Attempt = {
  ok: boolean;
  status: number | null;
  latencyMs: number;
  /** The first 1 KiB of the response body. */
  body: string | null;
  error: string | null;
};

export const BODY_EXCERPT = 1024;

/** Text a receiver sent, storable on both engines: PostgreSQL text holds no NUL. */
const storable = (text: string) => text.replaceAll("\u0000", "\uFFFD");

/**
 * POSTs `body` to `url` once: addresses checked after resolution (and the connection made to
 * them), `timeoutMs` for the whole exchange, redirects not followed, the first 1 KiB kept.
 */
export function post(
  url: string,
  headers: Record<string, string>,
  body: string,
  opts: { allowPrivate: boolean; timeoutMs: number },
): Promise<Attempt> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const target = new URL(url);
  const host = target.hostname.replace(/^\[|\]$/g, "");
  if (!opts.allowPrivate && isIP(host)) {
    const why = refusedAddress(host);
    if (why !== null)
      return Promise.resolve({
        ok: false,
        status: null,
        latencyMs: 0,
        body: null,
        error: `refused: ${why}; set KEYGATE_WEBHOOK_ALLOW_PRIVATE=true to allow it`,
      });
  }
  const request = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: Omit<Attempt, "latencyMs">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...a, latencyMs: elapsed() });
    };
    const req = request(
      target,
      {
        method: "POST",
        headers: {
          ...headers,
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(body)),
        },
        lookup: guardedLookup(opts.allowPrivate) as never,
        agent: false,
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const finish = () => {
          const text = storable(Buffer.concat(chunks).subarray(0, BODY_EXCERPT).toString("utf8"));
          const status = res.statusCode ?? 0;
          const ok = status >= 200 && status < 300;
          const redirect = status >= 300 && status < 400;
          done({
            ok,
            status,
            body: text === "" ? null : text,
            error: ok
              ? null
              : redirect
                ? `answered ${status}, a redirect${res.headers.location ? ` to ${storable(String(res.headers.location).slice(0, 200))}` : ""}: redirects are not followed; register the final URL`
                : `answered ${status}`,
          });
          res.destroy();
        };
        res.on("data", (c: Buffer) => {
          if (size < BODY_EXCERPT) chunks.push(c);
          size += c.length;
          if (size >= BODY_EXCERPT) finish();
        });
        res.on("end", finish);
        res.on("error", finish);
      },
    );
    const timer = setTimeout(() => {
      done({
        ok: false,
        status: null,
        body: null,
        error: `no answer within ${opts.timeoutMs / 1000} s`,
      });
      req.destroy();
    }, opts.timeoutMs);
    req.on("error", (err: NodeJS.ErrnoException) => {
      const refused = err.name === "Error" && (err as { code?: string }).code === "ADDRESS_REFUSED";
      done({
        ok: false,
        status: null,
        body: null,
        error: refused
          ? `refused: ${err.message}`
          : storable(`${err.code ? `${err.code}: ` : ""}${err.message}`.slice(0, 500)),
      });
    });
    req.end(body);
  });
}
