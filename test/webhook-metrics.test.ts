import parse from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { harness } from "./helpers.js";
import { receiver, until } from "./webhook-receiver.js";

const TOKEN = "metrics-token-0123456789abcdef";
const FAST = { pollMs: 20, retryScheduleMs: [100, 100, 100, 100, 100, 100], jitter: 0 };

describe("webhook deliveries in the metrics", () => {
  it("counts each attempt by outcome: delivered, and failed while the receiver refuses", async () => {
    const h = await harness(
      { KEYGATE_WEBHOOK_ALLOW_PRIVATE: "true", KEYGATE_METRICS_TOKEN: TOKEN },
      { delivery: FAST },
    );
    const rx = await receiver();
    try {
      await h.kg.deliveries.start();
      const made = await h.api("POST", "/api/webhooks", h.adminToken, {
        url: rx.url,
        events: ["key.created"],
      });
      expect(made.statusCode).toBe(201);
      const counts = async () => {
        const res = await h.app.inject({
          method: "GET",
          url: "/metrics",
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        expect(res.statusCode).toBe(200);
        const family = parse(res.body).find((f) => f.name === "keygate_webhook_deliveries_total");
        const of = (outcome: string) =>
          Number(
            (family?.metrics as { labels: Record<string, string>; value: string }[]).find(
              (m) => m.labels.outcome === outcome,
            )?.value ?? 0,
          );
        return { delivered: of("delivered"), failed: of("failed") };
      };
      expect(await counts()).toEqual({ delivered: 0, failed: 0 });

      await h.mint(h.adminToken, { name: "one" });
      await until(() => rx.received.length === 1, "the first delivery");
      await expect.poll(counts).toEqual({ delivered: 1, failed: 0 });

      // Refused twice, then taken: two failures and one more delivery.
      let refusals = 2;
      rx.answer((_r) => (refusals-- > 0 ? { status: 503 } : { status: 200 }));
      await h.mint(h.adminToken, { name: "two" });
      await until(() => rx.received.length === 4, "the retried delivery");
      await expect.poll(counts).toEqual({ delivered: 2, failed: 2 });
    } finally {
      await h.close();
      await rx.close();
    }
  });
});
