import { describe, expect, it } from "vitest";
import { isScope, SCOPES, type Scope, scopeAllows, scopeNeededFor, verbsOf } from "./scopes.js";

/** Method → scope needed → which scopes allow it. */
const MATRIX: [method: string, needed: Scope, allowedBy: Scope[]][] = [
  ["GET", "read", ["read", "write", "delete"]],
  ["HEAD", "read", ["read", "write", "delete"]],
  ["OPTIONS", "read", ["read", "write", "delete"]],
  ["POST", "write", ["write", "delete"]],
  ["PUT", "write", ["write", "delete"]],
  ["PATCH", "write", ["write", "delete"]],
  ["DELETE", "delete", ["delete"]],
  ["PURGE", "delete", ["delete"]],
  ["get", "delete", ["delete"]],
  ["", "delete", ["delete"]],
];

describe("scopeNeededFor", () => {
  it.each(MATRIX)("%j needs %s", (method, needed) => {
    expect(scopeNeededFor(method)).toBe(needed);
  });
});

describe("scopeAllows", () => {
  for (const [method, , allowedBy] of MATRIX) {
    for (const scope of SCOPES) {
      const expected = allowedBy.includes(scope);
      it(`${scope} ${expected ? "allows" : "refuses"} ${JSON.stringify(method)}`, () => {
        expect(scopeAllows(scope, method)).toBe(expected);
      });
    }
  }
});

describe("verbsOf", () => {
  it("lists the methods each scope allows, nesting read ⊂ write ⊂ delete", () => {
    expect(verbsOf("read")).toEqual(["GET"]);
    expect(verbsOf("write")).toEqual(["GET", "POST", "PUT"]);
    expect(verbsOf("delete")).toEqual(["GET", "POST", "PUT", "DELETE"]);
  });
});

describe("isScope", () => {
  it("accepts exactly the three scope names", () => {
    for (const scope of SCOPES) expect(isScope(scope)).toBe(true);
    for (const other of ["READ", "admin", "", null, undefined, 0])
      expect(isScope(other)).toBe(false);
  });
});
