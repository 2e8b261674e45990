import { afterAll, describe, expect, it } from "vitest";
import { ENGINE, type Harness, harness } from "./helpers.js";

describe("/system/health", () => {
  let h: Harness;
  afterAll(() => h.close().catch(() => {}));

  it("answers 503 naming the database when it cannot be reached, and requests get a clear envelope", async () => {
    h = await harness();
    expect(h.kg.database.dialect).toBe(ENGINE);
    const { key } = await h.mint(h.adminToken);
    expect((await h.ext("GET", "/system/health")).statusCode).toBe(200);
    // Take the database away underneath the running app.
    await h.kg.database.db.destroy();
    const res = await h.ext("GET", "/system/health");
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      success: false,
      error: { code: "SERVICE_UNAVAILABLE", message: `the ${ENGINE} database is unreachable` },
      data: { status: "unavailable", database: "down", version: expect.any(String) },
    });
    // The key is cached, so it verifies; the read itself fails without a 500 stack trace.
    const read = await h.ext("GET", "/subscribers", key);
    expect(read.statusCode).toBeGreaterThanOrEqual(500);
    expect(read.body).not.toContain("at ");
    expect(read.json().error.message).not.toContain("destroyed");
  });
});
