import { createServer, type Server, type Socket, connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase, type Harness, harness } from "./helpers.js";

/** A TCP relay to PostgreSQL that the test can cut and restore, like a network outage. */
class Relay {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  async open(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(5432, "127.0.0.1");
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server?.listen(this.port, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
  }

  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    this.server = null;
  }
}

describe("PostgreSQL outage", () => {
  const relay = new Relay();
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let h: Harness;

  beforeAll(async () => {
    db = await freshDatabase();
    await relay.open();
    const url = db.url.replace("127.0.0.1:5432", `127.0.0.1:${relay.port}`);
    h = await harness({ KEYGATE_DATABASE_URL: url, KEYGATE_IP_RATE_LIMIT: "0" });
  });
  afterAll(async () => {
    await relay.cut();
    await h?.close().catch(() => {});
    await db?.drop();
  });

  it("answers 503 naming the database, keeps call logs queued and drains them after recovery", async () => {
    const { key, id } = await h.mint(h.adminToken);
    expect((await h.ext("GET", "/whoami", key)).statusCode).toBe(200);
    await h.kg.callLog.flush();

    await relay.cut();
    const health = await h.ext("GET", "/system/health");
    expect(health.statusCode).toBe(503);
    expect(health.json().data).toMatchObject({ database: "down", status: "unavailable" });
    expect(health.json().error.message).toBe("the postgres database is unreachable");

    // A cached key still verifies; a read that needs the database gets a clear 503.
    const started = Date.now();
    const read = await h.ext("GET", "/subscribers", key);
    expect(read.statusCode).toBe(503);
    expect(read.json().error).toMatchObject({
      code: "SERVICE_UNAVAILABLE",
      message: expect.stringContaining("database"),
    });
    expect(read.headers["retry-after"]).toBeDefined();
    expect(Date.now() - started).toBeLessThan(5_000);
    for (let i = 0; i < 20; i++) expect((await h.ext("GET", "/whoami", key)).statusCode).toBe(200);
    await expect(h.kg.callLog.flush()).rejects.toThrow();
    expect(h.kg.callLog.pending).toBe(21);

    await relay.open();
    await h.kg.callLog.flush();
    expect(h.kg.callLog.pending).toBe(0);
    expect((await h.ext("GET", "/system/health")).statusCode).toBe(200);
    const logs = await h.api("GET", `/api/api-keys/${id}/logs?limit=1000`, h.adminToken);
    expect(logs.json().data).toHaveLength(22);
    expect(
      logs.json().data.filter((r: { status_code: number }) => r.status_code === 503),
    ).toHaveLength(1);
  }, 30_000);
});
