import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, type Harness, harness } from "./helpers.js";

type Alert = { id: string; kind: string; severity: string; message: string; link: string | null };

describe("alerts of failing webhook endpoints", () => {
  let h: Harness;
  let id: number;
  const alerts = async (token = h.adminToken) => {
    const res = await h.api("GET", "/api/alerts", token);
    expectStatus(res, 200);
    return (res.json().data as Alert[]).filter((a) => a.kind.startsWith("webhook."));
  };
  const endpoint = (set: Record<string, unknown>) =>
    h.kg.database.db.updateTable("webhook_endpoints").set(set).where("id", "=", id).execute();

  beforeAll(async () => {
    h = await harness({ KEYGATE_WEBHOOK_ALLOW_PRIVATE: "true" });
    const res = await h.api("POST", "/api/webhooks", h.adminToken, {
      url: "http://127.0.0.1:9/hook",
      events: ["key.created"],
    });
    expectStatus(res, 201);
    id = res.json().data.id;
  });
  afterAll(() => h.close());

  it("says nothing of an endpoint that failed only just now", async () => {
    expect(await alerts()).toEqual([]);
    await endpoint({ failing_since: new Date(Date.now() - 60_000).toISOString() });
    expect(await alerts()).toEqual([]);
  });

  it("warns of an endpoint failing for an hour, links to it, and can be dismissed until a new spell", async () => {
    const since = new Date(Date.now() - 2 * 3_600_000).toISOString();
    await endpoint({ failing_since: since });
    const [alert, ...rest] = await alerts();
    expect(rest).toEqual([]);
    expect(alert).toMatchObject({
      kind: "webhook.failing",
      severity: "warning",
      link: `/webhooks?deliveries=${id}`,
      message: expect.stringContaining("http://127.0.0.1:9/hook"),
    });
    expectStatus(
      await h.api("POST", `/api/alerts/${encodeURIComponent(alert!.id)}/dismiss`, h.adminToken),
      200,
    );
    expect(await alerts()).toEqual([]);
    // Another spell of failures is another alert.
    await endpoint({ failing_since: new Date(Date.now() - 3 * 3_600_000).toISOString() });
    expect((await alerts()).map((a) => a.kind)).toEqual(["webhook.failing"]);
  });

  it("says critically when Keygate disabled the endpoint, with the reason; not to a reseller", async () => {
    await endpoint({
      enabled: 0,
      disabled_at: new Date().toISOString(),
      disabled_reason: "disabled automatically: every delivery failed for 5 days",
    });
    expect(await alerts()).toEqual([
      expect.objectContaining({
        kind: "webhook.disabled",
        severity: "critical",
        message: expect.stringContaining("every delivery failed for 5 days"),
      }),
    ]);
    const reseller = await h.user("hooks-reseller");
    expect(await alerts(reseller.token)).toEqual([]);
    // Disabled by hand (no reason): no alert.
    await endpoint({ disabled_reason: null });
    expect(await alerts()).toEqual([]);
  });
});
