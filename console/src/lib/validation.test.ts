import { describe, expect, it } from "vitest";
import {
  allowedIps,
  amount,
  currency,
  dateOnly,
  email,
  graceHours,
  ipEntry,
  isDate,
  keyExpiry,
  parseIpLines,
  phone,
  rateLimit,
  subscriberPassword,
  todayUtc,
  userPassword,
  username,
  validateKeyForm,
  validateNasForm,
  validateServiceForm,
  validateSubscriberForm,
  validateTransactionForm,
  validateUserForm,
} from "./validation";
import { levelsOf, limitsFor } from "./permissions";

const NOW = new Date("2026-05-12T11:02:31Z");

describe("allowed IP entries", () => {
  it("accepts IPv4, IPv6 and CIDR ranges as the server does", () => {
    for (const ok of [
      "203.0.113.7",
      "0.0.0.0/0",
      "10.0.0.0/8",
      "192.168.1.0/24",
      "2001:db8::1",
      "2001:DB8::/32",
      "::1",
      "::/0",
      "::ffff:192.0.2.1",
      "  198.51.100.2  ",
    ])
      expect(ipEntry(ok), ok).toBeNull();
  });

  it("refuses what is not an address, with the reason", () => {
    for (const bad of [
      "10.1",
      "256.1.1.1",
      "010.0.0.1",
      "1.2.3.4.5",
      "example.com",
      "fe80::1%eth0",
      "::g",
    ])
      expect(ipEntry(bad), bad).toMatch(/not an IPv4 or IPv6 address/);
    expect(ipEntry("10.0.0.0/33")).toMatch(/prefix length must be 0-32/);
    expect(ipEntry("2001:db8::/129")).toMatch(/0-128/);
    expect(ipEntry("10.0.0.0/x")).toMatch(/prefix length/);
  });

  it("names the network when host bits are set instead of widening silently", () => {
    expect(ipEntry("10.0.0.1/8")).toBe("host bits set: did you mean 10.0.0.0/8?");
    expect(ipEntry("2001:db8::1/32")).toMatch(/did you mean 2001:db8::\/32\?/);
  });

  it("reads one entry per line, skips blank lines and reports the bad line numbers", () => {
    const r = parseIpLines("203.0.113.7\n\n10.0.0.1/8\r\nnope\n2001:db8::/32\n");
    expect(r.entries).toEqual(["203.0.113.7", "2001:db8::/32"]);
    expect(r.problems.map((p) => p.line)).toEqual([3, 4]);
    expect(allowedIps("203.0.113.7\nnope")).toMatch(/^Line 2 \(nope\): not an IPv4/);
    expect(allowedIps("")).toBeNull();
  });

  it("caps the list at 100 entries", () => {
    const many = Array.from({ length: 101 }, (_, i) => `10.0.${Math.floor(i / 250)}.${i % 250}`);
    expect(allowedIps(many.join("\n"))).toMatch(/at most 100 entries/);
  });
});

describe("dates", () => {
  it("knows real calendar dates", () => {
    expect(isDate("2026-02-28")).toBe(true);
    expect(isDate("2028-02-29")).toBe(true);
    expect(isDate("2026-02-29")).toBe(false);
    expect(isDate("2026-13-01")).toBe(false);
    expect(isDate("26-01-01")).toBe(false);
    expect(dateOnly("")).toBeNull();
    expect(dateOnly("tomorrow")).toMatch(/YYYY-MM-DD/);
  });

  it("lets a key expire today (valid through the day, UTC) but not yesterday", () => {
    expect(todayUtc(NOW)).toBe("2026-05-12");
    expect(keyExpiry("", NOW)).toBeNull();
    expect(keyExpiry("2026-05-12", NOW)).toBeNull();
    expect(keyExpiry("2027-01-01", NOW)).toBeNull();
    expect(keyExpiry("2026-05-11", NOW)).toMatch(/has passed/);
    expect(keyExpiry("2026-02-30", NOW)).toMatch(/YYYY-MM-DD/);
  });
});

describe("single fields", () => {
  it("checks usernames like the server", () => {
    expect(username("")).toMatch(/Enter a username/);
    expect(username("ab")).toMatch(/at least 3/);
    expect(username("a".repeat(65))).toMatch(/at most 64/);
    expect(username("jo hn")).toMatch(/letters, digits/);
    expect(username("john.doe@isp_1-x")).toBeNull();
  });

  it("checks passwords for people and for subscribers", () => {
    expect(userPassword("short")).toMatch(/at least 8/);
    expect(userPassword("long enough")).toBeNull();
    expect(subscriberPassword("")).toMatch(/Enter a password/);
    expect(subscriberPassword("", { optional: true })).toBeNull();
    expect(subscriberPassword("abc")).toMatch(/at least 4/);
    expect(subscriberPassword("auto-generate")).toBeNull();
  });

  it("checks money, currency, contact details and ranges", () => {
    expect(amount("19.99")).toBeNull();
    expect(amount("0")).toMatch(/more than 0/);
    expect(amount("0", { allowZero: true })).toBeNull();
    expect(amount("1.999")).toMatch(/2 decimals/);
    expect(amount("-5")).toMatch(/2 decimals/);
    expect(amount("")).toMatch(/Enter an amount/);
    expect(currency("usd")).toMatch(/3-letter/);
    expect(currency("EUR")).toBeNull();
    expect(email("a@b.co")).toBeNull();
    expect(email("not-an-email")).toMatch(/email address/);
    expect(phone("+1 (555) 010-0000")).toBeNull();
    expect(phone("call me")).toMatch(/digits/);
    expect(rateLimit("")).toBeNull();
    expect(rateLimit("0")).toMatch(/1 to 1000000/);
    expect(rateLimit("2.5")).toMatch(/whole number/);
    expect(graceHours("0")).toBeNull();
    expect(graceHours("168")).toBeNull();
    expect(graceHours("169")).toMatch(/0 to 168/);
    expect(graceHours("")).toMatch(/Enter a grace period/);
  });
});

describe("whole forms", () => {
  const key = {
    name: "billing",
    description: "",
    permissions: levelsOf(["*:write"]),
    allowed_ips: "",
    rate_limit_per_minute: "",
    expires_at: "",
    owner_id: "",
    signing: "off" as const,
    quota_limit: "",
    quota_period: "day" as const,
    quota_refill_day: "",
  };

  it("key form: fine as filled in, and every problem at once when not", () => {
    expect(validateKeyForm(key, { now: NOW })).toEqual({});
    const problems = validateKeyForm(
      {
        ...key,
        allowed_ips: "1.2.3.4\n999.1.1.1",
        expires_at: "2020-01-01",
        rate_limit_per_minute: "0",
      },
      { now: NOW },
    );
    expect(Object.keys(problems).sort()).toEqual([
      "allowed_ips",
      "expires_at",
      "rate_limit_per_minute",
    ]);
    expect(validateKeyForm({ ...key, name: "" }, { now: NOW })).toEqual({});
    expect(validateKeyForm({ ...key, name: " " }, { now: NOW, editing: true }).name).toMatch(
      /Enter a name/,
    );
    const none = validateKeyForm({ ...key, permissions: levelsOf([]) }, { now: NOW });
    expect(none.permissions).toBe("Tick at least one permission, or choose a preset.");
    // NAS alone is nothing on a reseller's key: the server would refuse it.
    const nasOnly = { ...key, permissions: levelsOf(["nas:read"]) };
    expect(validateKeyForm(nasOnly, { now: NOW }).permissions).toBeUndefined();
    const limits = limitsFor("reseller");
    expect(validateKeyForm(nasOnly, { now: NOW, limits }).permissions).toMatch(
      /at least one permission/,
    );
  });

  it("subscriber form: username, password and service are required on create", () => {
    const empty = {
      username: "",
      password: "",
      service_id: "",
      full_name: "",
      email: "",
      phone: "",
      status: "active",
      expiry_date: "",
      owner_id: "",
    };
    expect(Object.keys(validateSubscriberForm(empty)).sort()).toEqual([
      "password",
      "service_id",
      "username",
    ]);
    expect(Object.keys(validateSubscriberForm(empty, { editing: true })).sort()).toEqual([
      "service_id",
      "username",
    ]);
    expect(
      validateSubscriberForm({
        ...empty,
        username: "alice",
        password: "auto-generate",
        service_id: "1",
      }),
    ).toEqual({});
  });

  it("service, NAS, transaction and user forms", () => {
    expect(
      validateServiceForm({
        name: "",
        download_kbps: "-1",
        upload_kbps: "",
        price: "9.999",
        currency: "usd",
        duration_days: "0",
        is_active: true,
      }),
    ).toMatchObject({
      name: expect.any(String),
      download_kbps: expect.any(String),
      price: expect.any(String),
      currency: expect.any(String),
      duration_days: expect.any(String),
    });
    const nas = { name: "core", ip_address: "10.0.0.0/8", type: "", description: "", secret: "" };
    expect(Object.keys(validateNasForm(nas)).sort()).toEqual(["ip_address", "secret"]);
    expect(validateNasForm({ ...nas, ip_address: "192.0.2.1" }, { editing: true })).toEqual({});
    expect(
      Object.keys(
        validateTransactionForm({
          subscriber_id: "",
          amount: "0",
          currency: "USD",
          type: "payment",
          reference: "",
          description: "",
        }),
      ).sort(),
    ).toEqual(["amount", "subscriber_id"]);
    expect(validateUserForm({ username: "bob", password: "12345678", role: "reseller" })).toEqual(
      {},
    );
    expect(
      Object.keys(validateUserForm({ username: "b", password: "1", role: "root" })).sort(),
    ).toEqual(["password", "role", "username"]);
  });
});
