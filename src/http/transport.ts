import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type {
  FastifyError,
  FastifyReply,
  FastifyRequest,
  FastifyServerOptions,
  onSendHookHandler,
} from "fastify";
import { AppError } from "../errors.js";
import type { Keygate } from "../keygate.js";
import { normalizeClientIp } from "../keys/ip.js";
import {
  flatError,
  isExternal,
  scrubText,
  sendError,
  structuredError,
  toAppError,
} from "./errors.js";
import { admit, logCall, verifyKey } from "./external.js";

const SAFE_REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/**
 * The request's id: the client's `X-Request-Id` when it is 1–128 safe characters and not
 * shaped like a key (it is echoed in a header), otherwise a new UUID.
 */
export function requestId(req: IncomingMessage): string {
  const sent = req.headers["x-request-id"];
  if (typeof sent === "string" && SAFE_REQUEST_ID.test(sent) && scrubText(sent) === sent) {
    return sent;
  }
  return timeOrderedId(Date.now());
}

let stampMs = -1;
let stampHead = "";
// Fixed per process: which instance made an id. The counter tells its ids apart.
const instance = randomUUID().slice(15, 23); // "xxx-yxxx": the version-4 UUID's random bits
let counter = Math.floor(Math.random() * 2 ** 32);
/**
 * An id in the UUID version 7 layout: 48 bits of milliseconds, then this process's random
 * bits and a counter. Ids made later sort later, so the call log's request-id index grows at
 * its right edge; one random draw per process, not per request, keeps it off the hot path.
 */
export function timeOrderedId(ms: number): string {
  if (ms !== stampMs) {
    stampMs = ms;
    const hex = ms.toString(16).padStart(12, "0").slice(-12);
    stampHead = `${hex.slice(0, 8)}-${hex.slice(8)}-7${instance}-`;
  }
  counter = (counter + 1) % 2 ** 48;
  return stampHead + hex12(counter);
}

/**
 * A 48-bit integer as 12 hex digits, by four table look-ups: `n.toString(16).padStart(12,
 * "0")` costs several times as much, on every request.
 */
export function hex12(n: number): string {
  const high = Math.floor(n / 2 ** 24);
  const low = n % 2 ** 24;
  return (
    (HEX3[high >>> 12] as string) +
    (HEX3[high & 0xfff] as string) +
    (HEX3[low >>> 12] as string) +
    (HEX3[low & 0xfff] as string)
  );
}

/** "000" to "fff": three hex digits for every 12-bit value. */
const HEX3 = Array.from({ length: 4096 }, (_, i) => i.toString(16).padStart(3, "0"));

type Send = (err: null, payload: unknown) => void;

/**
 * Answers made in one turn of the event loop, written together at its end (decision 0022).
 * Written one by one, each answer's write lands between the handling of two requests, by
 * when a client on the same host (a reverse proxy, a load generator) has gone back to sleep,
 * so every write pays for waking it; written back to back, the first wakes it and the rest
 * find it awake. An `onSend` hook that holds each answer's continuation and releases them all
 * from one `setImmediate`, which runs once the turn has handled every request that was
 * ready: an answer alone in its turn waits only for that. No answer is held much longer than
 * `maxHoldMs`: one made later than that after the first held is released with all the others
 * at once. An answer queued behind an earlier one on its connection (pipelining; it has no
 * socket yet) is not held: Node buffers it until its turn anyway. Nor is any later answer on
 * a connection once it has pipelined: its answers already leave one after another as each
 * finishes, and holding the first only delays that chain. `onError` reports a continuation
 * that throws; the others are still sent.
 */
export function coalescedWrites(onError: (err: unknown) => void, maxHoldMs = 2): onSendHookHandler {
  let held: unknown[] = [];
  let heldSince = 0;
  const release = () => {
    // Answers held while releasing (a continuation that answers another request) go into a
    // new batch, released by its own setImmediate or bound.
    const batch = held;
    held = [];
    for (let i = 0; i < batch.length; i += 2) {
      try {
        (batch[i] as Send)(null, batch[i + 1]);
      } catch (err) {
        onError(err);
      }
    }
  };
  // Connections seen pipelining: a request answered while an earlier one was still pending.
  const pipelining = new WeakSet<object>();
  return (request, reply, payload, done) => {
    const socket = reply.raw.socket;
    if (socket === null) {
      // (A request's socket can be missing: one injected without a connection, say.)
      const own = request.raw.socket as object | null | undefined;
      if (own) pipelining.add(own);
      done(null, payload);
      return;
    }
    if (pipelining.has(socket)) {
      done(null, payload);
      return;
    }
    if (held.push(done, payload) === 2) {
      heldSince = performance.now();
      setImmediate(release);
    } else if (performance.now() - heldSince >= maxHoldMs) release();
  };
}

/**
 * Errors the router meets before any route is chosen (a path that is not valid
 * percent-encoding, an over-long path segment). On the external surface the key is checked
 * first, as for an unknown route, and the call is logged; the answer is in the surface's
 * envelope, never the framework's own.
 */
export function frameworkErrors(kg: Keygate): FastifyServerOptions["frameworkErrors"] {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const err =
      toAppError(error) ?? new AppError("VALIDATION_ERROR", "the request could not be routed");
    request.clientIp = normalizeClientIp(request.ip);
    // No route, so no route's hooks: counted here, under the unmatched route.
    const counted = kg.metrics.requests.miss(request.url, request.method);
    if (!isExternal(request.url)) {
      sendError(request, reply, err);
      counted.record(reply.statusCode, reply.elapsedTime);
      return;
    }
    const answer = (verdict: Awaited<ReturnType<typeof verifyKey>>) => {
      const refused = admit(kg, request, reply, verdict);
      kg.metrics.verified(refused === null ? "ok" : refused.code);
      sendError(request, reply, refused ?? err);
      logCall(kg, request, reply);
      counted.record(reply.statusCode, reply.elapsedTime);
    };
    const verdict = verifyKey(kg, request);
    if (verdict instanceof Promise) {
      verdict.then(answer, () => {
        sendError(request, reply, err);
        logCall(kg, request, reply);
        counted.record(reply.statusCode, reply.elapsedTime);
      });
    } else answer(verdict);
  };
}

const BROKEN_HEADER = new AppError(
  "VALIDATION_ERROR",
  "the request could not be read as HTTP/1.1: a header line is broken, most often by a line break inside a header value — a key read from a file with its trailing newline, say. Send each value on one line (strip the newline)",
);

const CLIENT_ERRORS: Record<string, [number, AppError]> = {
  HPE_HEADER_OVERFLOW: [
    431,
    new AppError(
      "HEADERS_TOO_LARGE",
      "the request's headers are larger than 16 KiB; send fewer or shorter headers (an API key is 40 characters)",
    ),
  ],
  // A header value with a line break in it, most often a key read from a file with its
  // newline: the line ends in a bare LF, or the break starts a line that is no header.
  HPE_CR_EXPECTED: [400, BROKEN_HEADER],
  HPE_LF_EXPECTED: [400, BROKEN_HEADER],
  HPE_INVALID_HEADER_TOKEN: [400, BROKEN_HEADER],
  ERR_HTTP_REQUEST_TIMEOUT: [
    408,
    new AppError("VALIDATION_ERROR", "the request was not received in time; send it again, whole"),
  ],
};
/** What security.ts sets on every JSON answer, for the answers written to the socket here. */
const RAW_SECURITY_HEADERS =
  "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n" +
  "Content-Security-Policy: default-src 'none';frame-ancestors 'none'\r\nCache-Control: no-store\r\n";

const UNREADABLE = new AppError(
  "VALIDATION_ERROR",
  "the request could not be read as HTTP/1.1; check the request line and headers",
);

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (headers too large, a broken
 * request line): answered in the envelope of the surface the request line names, and on
 * the external surface written to the call log without a key.
 */
export function clientErrorHandler(kg: Keygate): FastifyServerOptions["clientErrorHandler"] {
  return (err, socket: Socket) => {
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    const [status, appError] = CLIENT_ERRORS[err.code ?? ""] ?? [400, UNREADABLE];
    const raw = (err as { rawPacket?: unknown }).rawPacket;
    const [method = "GET", path = "/"] = requestLine(Buffer.isBuffer(raw) ? raw : undefined);
    const external = isExternal(path);
    const body = JSON.stringify(external ? structuredError(appError) : flatError(appError));
    const id = requestId({ headers: {} } as IncomingMessage);
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${appError.code}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `X-Request-Id: ${id}\r\n${RAW_SECURITY_HEADERS}` +
          // An external answer names its environment; no key was read, so none.
          (external ? "Keygate-Environment: none\r\n" : "") +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
    kg.metrics.requests.miss(path, method).record(status, 0);
    if (external) {
      kg.callLog.push({
        apiKeyId: null,
        timestamp: new Date(kg.clock()).toISOString(),
        method: method.slice(0, 16),
        path: scrubText(path.split("?")[0]?.slice(0, 512) ?? "/"),
        statusCode: status,
        ip: normalizeClientIp(socket.remoteAddress ?? ""),
        latencyMs: 0,
        userAgent: null,
        errorCode: appError.code,
        requestId: id,
        message: appError.message,
        route: "(unmatched)",
      });
    }
  };
}

/** Method and target from the start of a raw request, when it has a readable request line. */
function requestLine(raw: Buffer | undefined): string[] {
  if (!raw) return [];
  const head = raw.subarray(0, 2048).toString("latin1");
  const end = head.indexOf("\r\n");
  const parts = (end === -1 ? head : head.slice(0, end)).split(" ");
  if (parts.length < 2 || !/^[A-Z]{1,16}$/.test(parts[0] ?? "")) return [];
  return [parts[0] as string, parts[1] as string];
}
