import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { coalescedWrites, hex12, timeOrderedId } from "./transport.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("request ids", () => {
  it("writes 48-bit counters as Number#toString(16) does, padded to 12 digits", () => {
    const edges = [0, 1, 0xfff, 0x1000, 0xffffff, 0x1000000, 0xfff_ffff_ffff, 2 ** 48 - 1];
    for (let i = 0; i < 2000; i++) edges.push(Math.floor(Math.random() * 2 ** 48));
    for (const n of edges) expect(hex12(n), String(n)).toBe(n.toString(16).padStart(12, "0"));
  });

  it("are UUID version 7: the millisecond first, then a counter that counts up", () => {
    const ms = Date.UTC(2026, 11, 3, 12, 0, 0, 123);
    const ids = Array.from({ length: 10_000 }, () => timeOrderedId(ms));
    let previous: number | null = null;
    for (const id of ids) {
      expect(id).toMatch(UUID_V7);
      expect(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms);
      const count = Number.parseInt(id.slice(24), 16);
      if (previous !== null) expect(count).toBe((previous + 1) % 2 ** 48);
      previous = count;
    }
    // A later millisecond sorts after, whatever the counter.
    expect(timeOrderedId(ms + 1) > (ids.at(-1) as string)).toBe(true);
  });
});

describe("coalesced writes", () => {
  type Hook = (req: unknown, reply: unknown, payload: unknown, done: Send) => void;
  type Send = (err: null, payload: unknown) => void;
  const connected = { raw: { socket: {} } };
  const turnEnd = () => new Promise<void>((resolve) => setImmediate(resolve));

  /** A Fastify app answering GET /n/:n with its n, the coalescer first among its onSend hooks. */
  async function app(coalesce: boolean, events: string[] = []) {
    const a = Fastify({ logger: false });
    if (coalesce)
      a.addHook(
        "onSend",
        coalescedWrites(() => {}),
      );
    a.addHook("onSend", (request, _reply, payload, done) => {
      events.push(`sent ${(request.params as { n: string }).n}`);
      done(null, payload);
    });
    a.get("/n/:n", async (request) => {
      const { n } = request.params as { n: string };
      events.push(`handled ${n}`);
      setImmediate(() => events.push(`turn ended after ${n}`));
      return { n: Number(n) };
    });
    // A client that hangs up before its answer is written.
    a.get("/gone", async (request) => {
      request.raw.socket.destroy();
      return { gone: true };
    });
    await a.listen({ host: "127.0.0.1", port: 0 });
    const { port } = a.server.address() as AddressInfo;
    return { a, port, events };
  }

  it("holds an answer until its turn of the event loop has ended, then writes it", async () => {
    for (const coalesce of [false, true]) {
      const { a, events } = await app(coalesce);
      const res = await a.inject({ method: "GET", url: "/n/7" });
      expect(res.json()).toEqual({ n: 7 });
      await turnEnd();
      // Without the coalescer the answer goes out at once, before the turn ends.
      expect(events).toEqual(
        coalesce
          ? ["handled 7", "turn ended after 7", "sent 7"]
          : ["handled 7", "sent 7", "turn ended after 7"],
      );
      await a.close();
    }
  });

  it("answers pipelined requests in order, each with its own body", async () => {
    const { a, port } = await app(true);
    const raw = await new Promise<string>((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => {
        let out = "";
        s.on("data", (d) => {
          out += d.toString("latin1");
          if ((out.match(/\{"n":\d+\}/g) ?? []).length === 20) {
            s.destroy();
            resolve(out);
          }
        });
        // Twenty requests in one write: Node parses them in one turn.
        s.write(
          Array.from({ length: 20 }, (_, i) => `GET /n/${i} HTTP/1.1\r\nHost: x\r\n\r\n`).join(""),
        );
      });
      s.on("error", reject);
    });
    expect((raw.match(/\{"n":\d+\}/g) ?? []).map((b) => JSON.parse(b).n)).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
    expect(raw.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(20);
    await a.close();
  });

  it("answers every request of a turn when one client has hung up", async () => {
    const { a, port } = await app(true);
    const base = `http://127.0.0.1:${port}`;
    const results = await Promise.allSettled([
      fetch(`${base}/gone`),
      ...Array.from({ length: 30 }, (_, i) => fetch(`${base}/n/${i}`).then((r) => r.json())),
    ]);
    expect(results[0]?.status).toBe("rejected");
    expect(results.slice(1).map((r) => (r.status === "fulfilled" ? r.value : r.reason))).toEqual(
      Array.from({ length: 30 }, (_, i) => ({ n: i })),
    );
    await a.close();
  });

  it("reports a continuation that throws and still sends the others", async () => {
    const errors: unknown[] = [];
    const hook = coalescedWrites((err) => errors.push(err)) as unknown as Hook;
    const sent: unknown[] = [];
    hook(null, connected, "a", () => {
      throw new Error("socket gone");
    });
    hook(null, connected, "b", (_e, p) => sent.push(p));
    expect(sent).toEqual([]);
    await turnEnd();
    expect(sent).toEqual(["b"]);
    expect(errors).toEqual([new Error("socket gone")]);
  });

  it("sends an answer held during a release at the end of the next turn", async () => {
    const hook = coalescedWrites(() => {}) as unknown as Hook;
    const sent: unknown[] = [];
    hook(null, connected, "first", (_e, p) => {
      sent.push(p);
      hook(null, connected, "later", (_e2, p2) => sent.push(p2));
    });
    await turnEnd();
    expect(sent).toEqual(["first"]);
    await turnEnd();
    expect(sent).toEqual(["first", "later"]);
  });

  it("releases every held answer at once when one comes more than maxHoldMs after the first", async () => {
    const hook = coalescedWrites(() => {}, 2) as unknown as Hook;
    const sent: unknown[] = [];
    hook(null, connected, "early", (_e, p) => sent.push(p));
    hook(null, connected, "soon after", (_e, p) => sent.push(p));
    expect(sent).toEqual([]);
    // A turn that runs long (a slow synchronous handler) before the next answer.
    const until = performance.now() + 3;
    while (performance.now() < until);
    hook(null, connected, "late", (_e, p) => sent.push(p));
    expect(sent).toEqual(["early", "soon after", "late"]);
    await turnEnd();
    expect(sent).toEqual(["early", "soon after", "late"]);
    // The next answers are held again, from a new first one.
    hook(null, connected, "next", (_e, p) => sent.push(p));
    expect(sent).toHaveLength(3);
    await turnEnd();
    expect(sent).toEqual(["early", "soon after", "late", "next"]);
  });

  it("does not hold an answer queued behind another on its connection (no socket yet)", () => {
    const hook = coalescedWrites(() => {}) as unknown as Hook;
    const sent: unknown[] = [];
    hook({ raw: { socket: {} } }, { raw: { socket: null } }, "queued", (_e, p) => sent.push(p));
    expect(sent).toEqual(["queued"]);
    // Nor one whose request has no socket at all.
    hook({ raw: { socket: null } }, { raw: { socket: null } }, "bare", (_e, p) => sent.push(p));
    expect(sent).toEqual(["queued", "bare"]);
  });

  it("holds no answer on a connection once it has pipelined, and still holds the others'", async () => {
    const hook = coalescedWrites(() => {}) as unknown as Hook;
    const piped = {};
    const other = {};
    const sent: unknown[] = [];
    hook({ raw: { socket: piped } }, { raw: { socket: piped } }, "first", (_e, p) => sent.push(p));
    hook({ raw: { socket: piped } }, { raw: { socket: null } }, "queued", (_e, p) => sent.push(p));
    // The first was held before the connection was seen pipelining; it goes out at the turn's end.
    expect(sent).toEqual(["queued"]);
    await turnEnd();
    expect(sent).toEqual(["queued", "first"]);
    hook({ raw: { socket: piped } }, { raw: { socket: piped } }, "next", (_e, p) => sent.push(p));
    expect(sent).toEqual(["queued", "first", "next"]);
    hook({ raw: { socket: other } }, { raw: { socket: other } }, "elsewhere", (_e, p) =>
      sent.push(p),
    );
    expect(sent).toHaveLength(3);
    await turnEnd();
    expect(sent).toEqual(["queued", "first", "next", "elsewhere"]);
  });
});
