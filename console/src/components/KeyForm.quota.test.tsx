// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { apiKey, PRESETS } from "../test/fakeApi";
import { renderUi } from "../test/render";
import { type KeyBody, KeyForm, keyBody, quotaLoosening } from "./KeyForm";

const NOW = new Date("2026-05-12T11:00:00Z");

afterEach(cleanup);

function type(label: string, value: string) {
  fireEvent.change(screen.getByLabelText(label), { target: { value } });
}

async function submitted(onSubmit: ReturnType<typeof vi.fn>, button: string) {
  fireEvent.click(screen.getByRole("button", { name: button }));
  await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
  return onSubmit.mock.calls[0]?.[0] as KeyBody;
}

describe("the key form's quota", () => {
  it("mints with a daily quota, and without one when left empty", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    renderUi(
      <KeyForm
        environment="live"
        presets={PRESETS}
        isAdmin={false}
        selfId={2}
        onSubmit={onSubmit}
        now={NOW}
      />,
    );
    // The period and refill day wait for a limit.
    expect((screen.getByLabelText("Refill day") as HTMLInputElement).disabled).toBe(true);
    type("Quota", "10000");
    const body = await submitted(onSubmit, "Mint key");
    expect(body.quota).toEqual({ limit: 10000, period: "day" });
  });

  it("refuses a quota that is no whole number of calls, before sending", async () => {
    const onSubmit = vi.fn(async () => undefined);
    renderUi(
      <KeyForm
        environment="live"
        presets={PRESETS}
        isAdmin={false}
        selfId={2}
        onSubmit={onSubmit}
        now={NOW}
      />,
    );
    type("Quota", "0");
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    expect(await screen.findByText("Use a whole number from 1 to 1000000000.")).toBeTruthy();
    await new Promise((r) => setTimeout(r, 20));
    expect(onSubmit).not.toHaveBeenCalled();
  });

  it("on edit shows the key's monthly quota and sends it whole when a part changes", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    const existing = {
      ...apiKey(),
      quota: { limit: 5000, period: "month" as const, refill_day: 15 },
    };
    renderUi(
      <KeyForm
        existing={existing}
        environment="live"
        presets={PRESETS}
        isAdmin={true}
        selfId={1}
        onSubmit={onSubmit}
        now={NOW}
      />,
    );
    expect((screen.getByLabelText("Quota") as HTMLInputElement).value).toBe("5000");
    expect((screen.getByLabelText("Refill day") as HTMLInputElement).value).toBe("15");
    type("Refill day", "31");
    const body = await submitted(onSubmit, "Save changes");
    expect(body).toEqual({ quota: { limit: 5000, period: "month", refill_day: 31 } });
  });

  it("tells a reseller before sending that only an admin loosens a quota, and lets them lower it", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    const existing = { ...apiKey(), quota: { limit: 5000, period: "day" as const } };
    renderUi(
      <KeyForm
        existing={existing}
        environment="live"
        presets={PRESETS}
        isAdmin={false}
        selfId={2}
        onSubmit={onSubmit}
        now={NOW}
      />,
    );
    const save = () => fireEvent.click(screen.getByRole("button", { name: "Save changes" }));
    type("Quota", "6000");
    save();
    expect(await screen.findByText(/Only an admin can raise this key's quota/)).toBeTruthy();
    type("Quota", "");
    save();
    expect(await screen.findByText(/Only an admin can remove this key's quota/)).toBeTruthy();
    expect(screen.getByText(/at most 5,000 a day/)).toBeTruthy();
    await new Promise((r) => setTimeout(r, 20));
    expect(onSubmit).not.toHaveBeenCalled();
    type("Quota", "4000");
    const body = await submitted(onSubmit, "Save changes");
    expect(body).toEqual({ quota: { limit: 4000, period: "day" } });
  });

  it("names each way a quota is loosened, and none when it is tightened", () => {
    const month = { limit: 100, period: "month" as const, refill_day: 15 };
    expect(quotaLoosening(month, null)).toMatch(/remove/);
    expect(quotaLoosening(month, { limit: 100, period: "day" })).toMatch(/period or refill day/);
    expect(quotaLoosening(month, { limit: 100, period: "month" })).toMatch(/refill day/);
    expect(quotaLoosening(month, { limit: 101, period: "month", refill_day: 15 })).toMatch(/raise/);
    expect(quotaLoosening(month, { limit: 99, period: "month", refill_day: 15 })).toBeNull();
    // A monthly quota without a refill day refills on the 1st.
    expect(
      quotaLoosening(
        { limit: 100, period: "month" },
        { limit: 50, period: "month", refill_day: 1 },
      ),
    ).toBeNull();
  });

  it("builds the body: null removes a quota, an untouched one is not sent", () => {
    const base = {
      name: "k",
      description: "",
      permissions: { "*": "read" } as never,
      allowed_ips: "",
      rate_limit_per_minute: "",
      expires_at: "",
      owner_id: "",
      signing: "off" as const,
      quota_limit: "100",
      quota_period: "month" as const,
      quota_refill_day: "",
    };
    expect(keyBody({ ...base, quota_limit: "" }, base, true).quota).toBeNull();
    expect(keyBody(base, base, true)).not.toHaveProperty("quota");
    expect(keyBody({ ...base, quota_period: "day" }, base, true).quota).toEqual({
      limit: 100,
      period: "day",
    });
  });
});
