import { describe, expect, it } from "vitest";
import {
  beyond,
  FULL,
  grants,
  levelsOf,
  limitsFor,
  noLevels,
  normalise,
  parsePermission,
  summarise,
  tick,
  toPermissions,
} from "./permissions";

const PRESETS = {
  read_only: ["*:read"],
  billing: ["subscribers:read", "transactions:write", "usage:read"],
  provisioning: ["subscribers:delete", "services:read"],
  monitoring: ["stats:read"],
  full: ["*:delete"],
};

describe("parsing", () => {
  it("reads resource:action in any case and spacing, and refuses anything else", () => {
    expect(parsePermission(" Subscribers:READ ")).toEqual({
      resource: "subscribers",
      action: "read",
    });
    expect(parsePermission("*:delete")).toEqual({ resource: "*", action: "delete" });
    for (const bad of ["subscribers", "subscribers:", "users:read", "nas:admin", "a:b:c", ""])
      expect(parsePermission(bad), bad).toBeNull();
  });
});

describe("normalisation", () => {
  it("keeps the highest action of each resource", () => {
    expect(normalise(["subscribers:read", "subscribers:write", " Usage:READ "])).toEqual([
      "subscribers:write",
      "usage:read",
    ]);
    expect(normalise(["transactions:delete", "transactions:read"])).toEqual([
      "transactions:delete",
    ]);
  });

  it("writes * for what every resource has, then the resources that have more", () => {
    const all = ["subscribers", "transactions", "usage", "services", "nas", "stats"];
    expect(normalise(all.map((r) => `${r}:read`))).toEqual(["*:read"]);
    expect(normalise(["*:read", "nas:delete"])).toEqual(["*:read", "nas:delete"]);
    expect(normalise(["*:write", "subscribers:read"])).toEqual(["*:write"]);
    expect(normalise(["*:read", "*:delete"])).toEqual(["*:delete"]);
  });

  it("leaves the presets as they are, and ignores what is not a permission", () => {
    for (const [name, p] of Object.entries(PRESETS)) expect(normalise(p), name).toEqual(p);
    expect(normalise(["users:read", "stats:read"])).toEqual(["stats:read"]);
    expect(normalise([])).toEqual([]);
  });

  it("leaves out what the owner's role cannot have; * still stands for the rest", () => {
    const reseller = limitsFor("reseller");
    expect(toPermissions(reseller)).toEqual([
      "subscribers:delete",
      "transactions:delete",
      "usage:delete",
      "services:read",
      "stats:read",
    ]);
    expect(limitsFor("admin")).toEqual(FULL);
    expect(limitsFor(undefined)).toEqual(FULL);
    expect(normalise(["*:read"], reseller)).toEqual(["*:read"]);
    expect(normalise(["*:delete"], reseller)).toEqual(["*:delete"]);
    expect(normalise(["*:write"], reseller)).toEqual(["*:write"]);
    expect(normalise(["nas:read", "stats:read"], reseller)).toEqual(["stats:read"]);
    expect(normalise(["services:delete"], reseller)).toEqual(["services:read"]);
    expect(normalise(["nas:delete"], reseller)).toEqual([]);
    // Every resource a reseller reaches, as far as it may: that is *:delete for its key.
    expect(normalise(toPermissions(reseller), reseller)).toEqual(["*:delete"]);
    const allButNas = ["subscribers", "transactions", "usage", "services", "stats"];
    expect(
      normalise(
        allButNas.map((r) => `${r}:read`),
        reseller,
      ),
    ).toEqual(["*:read"]);
    expect(normalise(allButNas.map((r) => `${r}:read`))).toHaveLength(5);
  });

  it("takes the server's limits when it gives them", () => {
    const limits = limitsFor("reseller", { reseller: ["*:read"], admin: ["*:delete"] });
    expect(normalise(["subscribers:delete", "stats:read"], limits)).toEqual([
      "subscribers:read",
      "stats:read",
    ]);
    expect(beyond(["nas:read", "*:delete", "stats:read"], limitsFor("reseller"))).toEqual([
      "nas:read",
    ]);
    expect(beyond(["services:write"], limitsFor("reseller"))).toEqual(["services:write"]);
    expect(beyond(["nas:delete"], FULL)).toEqual([]);
  });
});

describe("implication", () => {
  it("write implies read and delete implies write, also through *", () => {
    const l = levelsOf(["transactions:write", "*:read", "subscribers:delete"]);
    expect(grants(l, "transactions", "read")).toBe(true);
    expect(grants(l, "transactions", "write")).toBe(true);
    expect(grants(l, "transactions", "delete")).toBe(false);
    expect(grants(l, "subscribers", "write")).toBe(true);
    expect(grants(l, "nas", "read")).toBe(true);
    expect(grants(l, "nas", "write")).toBe(false);
  });

  it("ticking delete ticks write and read; unticking read unticks write and delete", () => {
    let l = tick(noLevels(), "subscribers", "delete", true);
    expect(toPermissions(l)).toEqual(["subscribers:delete"]);
    expect(grants(l, "subscribers", "read")).toBe(true);
    l = tick(l, "subscribers", "read", false);
    expect(toPermissions(l)).toEqual([]);
    l = tick(tick(noLevels(), "usage", "write", true), "usage", "read", true);
    expect(toPermissions(l)).toEqual(["usage:write"]);
    expect(toPermissions(tick(l, "usage", "write", false))).toEqual(["usage:read"]);
    // Unticking delete keeps write; unticking write of a delete keeps read.
    const d = levelsOf(["stats:delete"]);
    expect(toPermissions(tick(d, "stats", "delete", false))).toEqual(["stats:write"]);
    expect(toPermissions(tick(d, "stats", "write", false))).toEqual(["stats:read"]);
  });
});

describe("the summary", () => {
  const say = (p: string[], role?: string) =>
    summarise(levelsOf(p), { role, limits: limitsFor(role) });

  it("says what each preset allows", () => {
    expect(say(PRESETS.read_only)).toBe("Can read everything; cannot change or delete anything.");
    expect(say(PRESETS.billing)).toBe(
      "Can read subscribers and usage and post transactions; cannot delete anything. No access to services, NAS devices or stats.",
    );
    expect(say(PRESETS.provisioning)).toBe(
      "Can read services and create, change and delete subscribers. No access to transactions, usage, NAS devices or stats.",
    );
    expect(say(PRESETS.monitoring)).toBe(
      "Can read stats; cannot change or delete anything. No access to subscribers, transactions, usage, services or NAS devices.",
    );
  });

  it("says *:delete can do everything, and *:write everything but delete", () => {
    expect(say(["*:delete"])).toBe("Can read, change and delete everything.");
    expect(say(["*:write"])).toBe("Can read and change everything; cannot delete anything.");
    expect(say(["*:write", "subscribers:delete", "usage:delete"])).toBe(
      "Can read and change everything and delete subscribers and usage.",
    );
    expect(say(["*:read", "transactions:write", "services:write"])).toBe(
      "Can read everything, post transactions and change services; cannot delete anything.",
    );
  });

  it("says when nothing is allowed, and what the owner's role keeps out of reach", () => {
    expect(say([])).toBe("No permissions: the key could only test its connection (/whoami).");
    expect(say(["*:delete"], "reseller")).toBe(
      "Can read, change and delete everything. Its owner is a reseller, so NAS devices stay out of reach and services and stats can only be read.",
    );
    expect(say(["*:read"], "reseller")).toBe(
      "Can read everything; cannot change or delete anything. Its owner is a reseller, so NAS devices stay out of reach.",
    );
    // Within the limits nothing is cut off, and nothing needs saying about the role.
    expect(say(PRESETS.billing, "reseller")).toBe(
      "Can read subscribers and usage and post transactions; cannot delete anything. No access to services or stats.",
    );
    expect(say(["nas:read"], "reseller")).toBe(
      "No permissions: the key could only test its connection (/whoami). Its owner is a reseller, so NAS devices stay out of reach.",
    );
  });
});
