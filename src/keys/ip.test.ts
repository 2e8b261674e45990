import { describe, expect, it } from "vitest";
import {
  type AllowList,
  type AllowListResult,
  ipAllowed,
  MAX_ALLOWED_IPS,
  normalizeClientIp,
  parseAllowList,
} from "./ip.js";

function entriesOf(result: AllowListResult): readonly string[] {
  if (!result.ok) throw new Error(`expected ok, got ${JSON.stringify(result.problems)}`);
  return result.list.entries;
}

function listOf(...values: string[]): AllowList {
  const result = parseAllowList(values);
  if (!result.ok) throw new Error(`expected ok, got ${JSON.stringify(result.problems)}`);
  return result.list;
}

function problemsOf(values: string[]) {
  const result = parseAllowList(values);
  if (result.ok) throw new Error(`expected problems, got ${JSON.stringify(result.list.entries)}`);
  return result.problems;
}

const NOT_AN_ADDRESS = /not an IPv4 or IPv6 address/;

describe("parseAllowList: accepted forms", () => {
  it("keeps a lone IPv4 address as itself", () => {
    expect(entriesOf(parseAllowList(["203.0.113.7"]))).toEqual(["203.0.113.7"]);
  });

  it("canonicalises IPv6 addresses (lowercase, compressed)", () => {
    expect(entriesOf(parseAllowList(["2001:DB8:0:0:0:0:0:1"]))).toEqual(["2001:db8::1"]);
  });

  it("keeps CIDR ranges of both families", () => {
    expect(entriesOf(parseAllowList(["10.0.0.0/8", "2001:db8::/32"]))).toEqual([
      "10.0.0.0/8",
      "2001:db8::/32",
    ]);
  });

  it("accepts /0 for both families", () => {
    expect(entriesOf(parseAllowList(["0.0.0.0/0", "::/0"]))).toEqual(["0.0.0.0/0", "::/0"]);
  });

  it("writes a full-length prefix (/32, /128) as the lone address", () => {
    expect(entriesOf(parseAllowList(["198.51.100.4/32", "2001:db8::5/128"]))).toEqual([
      "198.51.100.4",
      "2001:db8::5",
    ]);
  });

  it("trims surrounding whitespace", () => {
    expect(entriesOf(parseAllowList(["  10.0.0.1\t"]))).toEqual(["10.0.0.1"]);
  });

  it("normalises IPv4-mapped IPv6 to plain IPv4", () => {
    expect(entriesOf(parseAllowList(["::ffff:192.0.2.1"]))).toEqual(["192.0.2.1"]);
    expect(entriesOf(parseAllowList(["::ffff:c000:201"]))).toEqual(["192.0.2.1"]);
  });

  it("collapses duplicates, including the same address spelled differently", () => {
    const list = listOf("10.0.0.1", "10.0.0.1/32", "::ffff:10.0.0.1", " 10.0.0.1 ", "10.0.0.2");
    expect(list.entries).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(list.ranges).toHaveLength(2);
  });

  it(`accepts exactly ${MAX_ALLOWED_IPS} entries`, () => {
    const values = Array.from({ length: MAX_ALLOWED_IPS }, (_, i) => `10.0.0.${i}`);
    expect(entriesOf(parseAllowList(values))).toHaveLength(100);
  });

  it("accepts an empty list", () => {
    expect(entriesOf(parseAllowList([]))).toEqual([]);
  });

  // A mapped range's prefix counts IPv6 bits: /104 over ::ffff:10.0.0.0 is 10.0.0.0/8.
  it("normalises an IPv4-mapped IPv6 range to the equivalent IPv4 range", () => {
    expect(entriesOf(parseAllowList(["::ffff:10.0.0.0/104"]))).toEqual(["10.0.0.0/8"]);
    expect(entriesOf(parseAllowList(["::ffff:0:0/96"]))).toEqual(["0.0.0.0/0"]);
  });

  it("reads a short prefix on a mapped address as IPv6, not as IPv4", () => {
    expect(problemsOf(["::ffff:10.0.0.0/8"])[0]?.message).toMatch(/^host bits set/);
  });
});

describe("parseAllowList: refused forms", () => {
  it("refuses an IPv4 range with host bits set, suggesting the network", () => {
    const [problem] = problemsOf(["10.1.2.3/8"]);
    expect(problem).toEqual({
      index: 0,
      value: "10.1.2.3/8",
      message: "host bits set: did you mean 10.0.0.0/8?",
    });
  });

  it("refuses an IPv6 range with host bits set, suggesting the network", () => {
    const [problem] = problemsOf(["2001:db8::1/32"]);
    expect(problem?.message).toBe("host bits set: did you mean 2001:db8::/32?");
  });

  it("refuses host bits set below a byte boundary", () => {
    const [problem] = problemsOf(["192.168.1.128/24"]);
    expect(problem?.message).toBe("host bits set: did you mean 192.168.1.0/24?");
    const [odd] = problemsOf(["192.168.1.7/30"]);
    expect(odd?.message).toBe("host bits set: did you mean 192.168.1.4/30?");
  });

  it.each([
    ["10.0.0.0/33", "prefix length must be 0-32"],
    ["10.0.0.0/-1", "prefix length must be 0-32"],
    ["10.0.0.0/abc", "prefix length must be 0-32"],
    ["10.0.0.0/", "prefix length must be 0-32"],
    ["10.0.0.0/8/8", "prefix length must be 0-32"],
    ["10.0.0.0/1000", "prefix length must be 0-32"],
    ["::/129", "prefix length must be 0-128"],
    ["2001:db8::/-1", "prefix length must be 0-128"],
    ["2001:db8::/abc", "prefix length must be 0-128"],
  ])("refuses the prefix in %s", (value, message) => {
    expect(problemsOf([value])).toEqual([{ index: 0, value, message }]);
  });

  it.each([
    "hello",
    "10.1",
    "10.0.1",
    "010.0.0.1",
    "10.0.0.01",
    "167772161",
    "0x0a.0.0.1",
    "10.0.0.256",
    "1.2.3.4.5",
    "10.0.0.0 /8",
    "fe80::1%eth0",
    "2001:db8:::1",
    "/8",
    "10.0.0.1-10.0.0.9",
  ])("refuses %j as not an address", (value) => {
    const [problem] = problemsOf([value]);
    expect(problem?.message).toMatch(NOT_AN_ADDRESS);
  });

  it("refuses an empty or blank entry", () => {
    expect(problemsOf([""])[0]?.message).toBe("empty entry");
    expect(problemsOf(["   "])[0]?.message).toBe("empty entry");
  });

  it("reports every bad entry with its index, and nothing when any entry is bad", () => {
    const problems = problemsOf(["10.0.0.1", "nope", "10.0.0.0/99", ""]);
    expect(problems.map((p) => [p.index, p.value])).toEqual([
      [1, "nope"],
      [2, "10.0.0.0/99"],
      [3, ""],
    ]);
  });

  it("truncates a very long bad value in the report", () => {
    const [problem] = problemsOf(["x".repeat(500)]);
    expect(problem?.value).toHaveLength(100);
  });

  it(`refuses more than ${MAX_ALLOWED_IPS} entries`, () => {
    const values = Array.from({ length: MAX_ALLOWED_IPS + 1 }, (_, i) => `10.0.0.${i}`);
    const problems = problemsOf(values);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.message).toBe("at most 100 entries");
  });
});

describe("ipAllowed", () => {
  it("matches an IPv4 range at both ends and refuses just outside", () => {
    const list = listOf("192.168.1.0/24");
    expect(ipAllowed(list, "192.168.1.0")).toBe(true);
    expect(ipAllowed(list, "192.168.1.255")).toBe(true);
    expect(ipAllowed(list, "192.168.0.255")).toBe(false);
    expect(ipAllowed(list, "192.168.2.0")).toBe(false);
  });

  it("matches an IPv6 range at both ends and refuses just outside", () => {
    const list = listOf("2001:db8::/32");
    expect(ipAllowed(list, "2001:db8::")).toBe(true);
    expect(ipAllowed(list, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")).toBe(true);
    expect(ipAllowed(list, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff")).toBe(false);
    expect(ipAllowed(list, "2001:db9::")).toBe(false);
  });

  it("matches a lone address exactly", () => {
    const list = listOf("203.0.113.7", "2001:db8::7");
    expect(ipAllowed(list, "203.0.113.7")).toBe(true);
    expect(ipAllowed(list, "203.0.113.8")).toBe(false);
    expect(ipAllowed(list, "2001:db8::7")).toBe(true);
    expect(ipAllowed(list, "2001:0db8:0000:0000:0000:0000:0000:0007")).toBe(true);
    expect(ipAllowed(list, "2001:db8::8")).toBe(false);
  });

  it("matches any address of the family with /0, and none of the other family", () => {
    const v4 = listOf("0.0.0.0/0");
    expect(ipAllowed(v4, "255.255.255.255")).toBe(true);
    expect(ipAllowed(v4, "::1")).toBe(false);
    const v6 = listOf("::/0");
    expect(ipAllowed(v6, "::1")).toBe(true);
    expect(ipAllowed(v6, "8.8.8.8")).toBe(false);
  });

  it("never matches an address against a range of the other family", () => {
    const list = listOf("10.0.0.0/8");
    expect(ipAllowed(list, "a00::1")).toBe(false);
    const v6 = listOf("::a00:0/104");
    expect(ipAllowed(v6, "10.0.0.1")).toBe(false);
  });

  it("matches an IPv4-mapped client address against an IPv4 range", () => {
    const list = listOf("10.0.0.0/8");
    expect(ipAllowed(list, "::ffff:10.0.0.1")).toBe(true);
    expect(ipAllowed(list, "::ffff:11.0.0.1")).toBe(false);
  });

  it("matches a plain IPv4 client against an entry written as mapped IPv6", () => {
    expect(ipAllowed(listOf("::ffff:10.0.0.1"), "10.0.0.1")).toBe(true);
  });

  it("checks every entry of the list", () => {
    const list = listOf("10.0.0.0/8", "2001:db8::/32", "203.0.113.7");
    expect(ipAllowed(list, "203.0.113.7")).toBe(true);
    expect(ipAllowed(list, "2001:db8::42")).toBe(true);
    expect(ipAllowed(list, "10.200.0.1")).toBe(true);
    expect(ipAllowed(list, "172.16.0.1")).toBe(false);
  });

  it("refuses everything with an empty list", () => {
    expect(ipAllowed(listOf(), "10.0.0.1")).toBe(false);
  });

  it.each(["", "not-an-ip", "10.0.0.256", "1.2.3.4.5", " 10.0.0.1", "10.0.0.1/8", "::g"])(
    "refuses the invalid client IP %j",
    (client) => {
      expect(ipAllowed(listOf("0.0.0.0/0", "::/0"), client)).toBe(false);
    },
  );
});

describe("normalizeClientIp", () => {
  it("turns an IPv4-mapped address into plain IPv4", () => {
    expect(normalizeClientIp("::ffff:10.0.0.1")).toBe("10.0.0.1");
  });

  it("leaves plain IPv4 and IPv6 addresses alone", () => {
    expect(normalizeClientIp("10.0.0.1")).toBe("10.0.0.1");
    expect(normalizeClientIp("2001:db8::1")).toBe("2001:db8::1");
    expect(normalizeClientIp("::1")).toBe("::1");
  });

  it("returns unparsable input as is", () => {
    expect(normalizeClientIp("::ffff:not-an-ip")).toBe("::ffff:not-an-ip");
    expect(normalizeClientIp("::ffff:010.0.0.1")).toBe("::ffff:010.0.0.1");
    expect(normalizeClientIp("garbage")).toBe("garbage");
    expect(normalizeClientIp("")).toBe("");
  });

  it("leaves the hex form of a mapped address unchanged", () => {
    expect(normalizeClientIp("::ffff:a00:1")).toBe("::ffff:a00:1");
  });
});
