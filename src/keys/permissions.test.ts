import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ACTIONS,
  anyBit,
  beyondRole,
  bit,
  maskOf,
  methodNeed,
  normalize,
  parsePermissions,
  PRESETS,
  RESOURCES,
  ROLE_MASKS,
  scopeMask,
  scopeOf,
  summarize,
} from "./permissions.js";

/** The rule as the contract states it, on strings: same resource or `*`, action at least as wide. */
function grants(list: string[], resource: string, action: string): boolean {
  const rank = (a: string) => ACTIONS.indexOf(a as (typeof ACTIONS)[number]);
  return list.some((p) => {
    const [r, a] = p.split(":") as [string, string];
    return (r === "*" || r === resource) && rank(a) >= rank(action);
  });
}

const permission = fc
  .tuple(fc.constantFrom("*", ...RESOURCES), fc.constantFrom(...ACTIONS))
  .map(([r, a]) => `${r}:${a}`);

describe("permissions", () => {
  it("grant exactly what the string rules say, for any list", () => {
    fc.assert(
      fc.property(fc.array(permission, { maxLength: 8 }), (list) => {
        const mask = maskOf(list);
        for (const r of RESOURCES)
          for (const a of ACTIONS) expect((mask & bit(r, a)) !== 0).toBe(grants(list, r, a));
      }),
    );
  });

  it("normalise to a list that grants the same, and is its own normal form", () => {
    fc.assert(
      fc.property(fc.array(permission, { minLength: 1, maxLength: 8 }), (list) => {
        const normal = normalize(maskOf(list));
        expect(maskOf(normal)).toBe(maskOf(list));
        expect(normalize(maskOf(normal))).toEqual(normal);
        expect(normal.length).toBeLessThanOrEqual(RESOURCES.length + 1);
      }),
    );
  });

  it("normalise with * for what every resource has, then each resource above it", () => {
    expect(normalize(maskOf(["subscribers:read", "subscribers:write", "*:read"]))).toEqual([
      "*:read",
      "subscribers:write",
    ]);
    expect(normalize(maskOf(["usage:read", "subscribers:delete"]))).toEqual([
      "subscribers:delete",
      "usage:read",
    ]);
    expect(normalize(maskOf(RESOURCES.map((r) => `${r}:write`)))).toEqual(["*:write"]);
  });

  it("read case-insensitively and name every bad entry with what to write", () => {
    expect(parsePermissions([" Subscribers:READ "])).toEqual({
      ok: true,
      mask: maskOf(["subscribers:read"]),
    });
    const bad = parsePermissions(["write", "subscriber:read", "nas:execute", "nas", "ok:"]);
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.problems.map((p) => p.index)).toEqual([0, 1, 2, 3, 4]);
    expect(bad.problems[0]?.message).toContain('write "*:write"');
    expect(bad.problems[1]?.message).toContain('"subscriber" is not a resource');
    expect(bad.problems[2]?.message).toContain('"execute" is not an action');
  });

  it("answer the old scope only for the exact preset", () => {
    expect(scopeOf(maskOf(["*:read"]))).toBe("read");
    expect(scopeOf(maskOf(["*:write"]))).toBe("write");
    expect(scopeOf(maskOf(["*:delete"]))).toBe("delete");
    expect(scopeOf(maskOf(["subscribers:read"]))).toBe("custom");
    expect(scopeOf(maskOf(["*:read", "nas:write"]))).toBe("custom");
    for (const s of ["read", "write", "delete"] as const) expect(scopeOf(scopeMask(s))).toBe(s);
  });

  it("keep a key within its owner's role, counting only what is named explicitly", () => {
    expect(beyondRole(["nas:read"], "reseller")).toEqual(["nas:read"]);
    expect(beyondRole(["services:write", "subscribers:delete"], "reseller")).toEqual([
      "services:write",
    ]);
    expect(beyondRole(["*:delete"], "reseller")).toEqual([]);
    expect(beyondRole(["nas:delete"], "admin")).toEqual([]);
    expect(ROLE_MASKS.reseller & bit("nas", "read")).toBe(0);
    expect(ROLE_MASKS.reseller & bit("subscribers", "delete")).not.toBe(0);
  });

  it("need the method's action on some resource where no route names one", () => {
    expect(methodNeed("GET")).toBe(anyBit("read"));
    expect(methodNeed("POST")).toBe(anyBit("write"));
    expect(methodNeed("DELETE")).toBe(anyBit("delete"));
    expect(maskOf(["stats:read"]) & methodNeed("GET")).not.toBe(0);
    expect(maskOf(["stats:read"]) & methodNeed("DELETE")).toBe(0);
    expect(maskOf(["usage:delete"]) & methodNeed("DELETE")).not.toBe(0);
  });

  it("say what a set allows in plain words", () => {
    expect(summarize(maskOf(["subscribers:read", "transactions:write", "usage:read"]))).toBe(
      "can read subscribers and usage; read and write transactions; cannot delete anything",
    );
    expect(summarize(maskOf(["*:delete"]))).toBe("can read, write and delete everything");
    expect(summarize(maskOf(["*:read"]))).toBe("can read everything; cannot delete anything");
    expect(summarize(0)).toContain("nothing");
  });

  it("offer the presets the contract names, each a valid, normalised set", () => {
    const byName = Object.fromEntries(PRESETS.map((p) => [p.name, p.permissions]));
    expect(byName.read_only).toEqual(["*:read"]);
    expect(byName.billing).toEqual(["subscribers:read", "transactions:write", "usage:read"]);
    expect(byName.provisioning).toEqual(["subscribers:delete", "services:read"]);
    expect(byName.monitoring).toEqual(["stats:read"]);
    expect(byName.full).toEqual(["*:delete"]);
    for (const p of PRESETS) expect(normalize(maskOf(p.permissions))).toEqual(p.permissions);
  });
});
