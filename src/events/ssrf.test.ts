import { describe, expect, it } from "vitest";
import { hostProblem, refusedAddress, urlProblem } from "./ssrf.js";

describe("webhook targets", () => {
  it.each([
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "::1",
    "::",
    "fe80::1",
    "fd00:ec2::254",
    "fc00::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::",
    "224.0.0.1",
    "255.255.255.255",
  ])("refuses %s", (a) => {
    expect(refusedAddress(a)).not.toBeNull();
  });

  it("names metadata addresses as such", () => {
    expect(refusedAddress("169.254.169.254")).toContain("metadata");
    expect(refusedAddress("fd00:ec2::254")).toContain("metadata");
    expect(refusedAddress("::ffff:169.254.169.254")).toContain("metadata");
  });

  it.each(["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])("accepts %s", (a) => {
    expect(refusedAddress(a)).toBeNull();
  });

  it("checks a URL's form", () => {
    expect(urlProblem("https://example.com/hook")).toBeNull();
    expect(urlProblem("http://example.com:8080/hook?x=1")).toBeNull();
    expect(urlProblem("ftp://example.com/")).toMatch(/http/);
    expect(urlProblem("https://user:pw@example.com/")).toMatch(/credentials/);
    expect(urlProblem("https://example.com/#x")).toMatch(/fragment/);
    expect(urlProblem("not a url")).toMatch(/absolute/);
    expect(urlProblem(`https://example.com/${"a".repeat(2100)}`)).toMatch(/2048/);
  });

  it("resolves names and judges every address, unless private targets are allowed", async () => {
    expect(await hostProblem("localhost", false)).toMatch(/loopback/);
    expect(await hostProblem("127.0.0.1", false)).toMatch(/loopback/);
    expect(await hostProblem("[::ffff:7f00:1]", false)).toMatch(/loopback/);
    expect(await hostProblem("localhost", true)).toBeNull();
    expect(await hostProblem("10.0.0.1", true)).toBeNull();
  });
});
