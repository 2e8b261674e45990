import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type App, buildApp } from "../src/http/app.js";
import { createKeygate, type Keygate } from "../src/keygate.js";

describe("serving the console", () => {
  let kg: Keygate;
  let app: App;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "keygate-console-"));
    writeFileSync(
      join(dir, "index.html"),
      "<!doctype html><title>Keygate</title><div id=root></div>",
    );
    writeFileSync(join(dir, "app.js"), "console.log(1)");
    kg = await createKeygate(
      loadConfig({ KEYGATE_DATABASE_URL: "sqlite::memory:", KEYGATE_LOG_LEVEL: "silent" }),
    );
    app = await buildApp(kg, { logger: false, consoleDir: dir });
  });
  afterAll(async () => {
    await app.close();
    await kg.close();
  });

  it("serves the app at / and for any unknown non-API path", async () => {
    for (const url of ["/", "/keys/12", "/subscribers?page=2"]) {
      const res = await app.inject({ method: "GET", url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers["content-type"]).toContain("text/html");
      expect(res.body).toContain("<title>Keygate</title>");
    }
    const asset = await app.inject({ method: "GET", url: "/app.js" });
    expect(asset.body).toBe("console.log(1)");
  });

  it("keeps API 404s as JSON in the surface's envelope", async () => {
    const jwt = await app.inject({ method: "GET", url: "/api/nothing" });
    expect(jwt.statusCode).toBe(404);
    expect(jwt.json()).toMatchObject({ success: false, code: "NOT_FOUND" });
    const ext = await app.inject({ method: "POST", url: "/keys" });
    expect(ext.statusCode).toBe(404);
    expect(ext.json()).toMatchObject({ success: false, code: "NOT_FOUND" });
  });
});
