import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type Received = { headers: IncomingHttpHeaders; body: string; at: number };

/**
 * A real HTTP receiver on 127.0.0.1: records every request and answers what `answer` says
 * (200 by default). `close()` and `open()` take it down and bring it back on the same port.
 */
export async function receiver(port = 0) {
  const received: Received[] = [];
  let answer: (r: Received) => {
    status: number;
    body?: string;
    /** Answer this much later. */
    delayMs?: number;
    headers?: Record<string, string>;
  } = () => ({ status: 200, body: "ok" });
  let server: Server | null = null;
  const open = (p: number) =>
    new Promise<number>((resolve, reject) => {
      const s = createServer((req, res) => {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => {
          const r = { headers: req.headers, body, at: Date.now() };
          received.push(r);
          const a = answer(r);
          setTimeout(() => {
            res.writeHead(a.status, a.headers ?? {});
            res.end(a.body ?? "");
          }, a.delayMs ?? 0);
        });
      });
      s.once("error", reject);
      s.listen(p, "127.0.0.1", () => {
        server = s;
        resolve((s.address() as AddressInfo).port);
      });
    });
  const actual = await open(port);
  return {
    port: actual,
    url: `http://127.0.0.1:${actual}/hook`,
    received,
    answer(fn: typeof answer) {
      answer = fn;
    },
    async close() {
      const s = server;
      server = null;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async open() {
      await open(actual);
    },
  };
}

export async function until<T>(
  fn: () => T | Promise<T>,
  what: string,
  ms = 10_000,
): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`${what}: not in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
