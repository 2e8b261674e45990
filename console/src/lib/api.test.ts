import { describe, expect, it, vi } from "vitest";
import { ApiClient, ApiError, fieldErrors, type SessionEnd } from "./api";

type Call = { method: string; path: string; headers: Record<string, string>; body?: string };

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

const tokens = (access: string, expiresIn = 900) => ({
  success: true,
  data: {
    access_token: access,
    token_type: "Bearer",
    expires_in: expiresIn,
    user: { id: 1, username: "admin", role: "admin" },
  },
});

/** A fake /api: answers refresh with new tokens while `cookie` is live, and needs `valid` tokens elsewhere. */
function fakeServer() {
  const calls: Call[] = [];
  const state = { cookie: true, issued: 0, valid: new Set<string>() };
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const path = String(input);
    const headers = (init?.headers ?? {}) as Record<string, string>;
    calls.push({
      method: init?.method ?? "GET",
      path,
      headers,
      body: init?.body as string | undefined,
    });
    await new Promise((r) => setTimeout(r, 1));
    if (path === "/api/auth/login") {
      const token = `t${++state.issued}`;
      state.valid.add(token);
      state.cookie = true;
      return json(200, tokens(token));
    }
    if (path === "/api/auth/refresh") {
      if (!state.cookie)
        return json(401, {
          success: false,
          code: "UNAUTHORIZED",
          message: "refresh token is not valid; sign in again",
        });
      const token = `t${++state.issued}`;
      state.valid.add(token);
      return json(200, tokens(token));
    }
    const auth = headers.authorization?.replace("Bearer ", "") ?? "";
    if (!state.valid.has(auth))
      return json(401, { success: false, code: "UNAUTHORIZED", message: "access token expired" });
    if (path === "/api/auth/logout") {
      state.cookie = false;
      return json(200, { success: true, message: "signed out" });
    }
    if (path === "/api/api-keys" && init?.method === "POST")
      return json(400, {
        success: false,
        code: "VALIDATION_ERROR",
        message: "invalid body: allowed_ips[1] not an IPv4 or IPv6 address",
        details: [{ field: "allowed_ips[1]", message: "not an IPv4 or IPv6 address" }],
      });
    if (path.endsWith("/logs.csv"))
      return new Response(`id,timestamp\n1,2026-12-01T00:00:00.000Z\n`, {
        status: 200,
        headers: { "content-type": "text/csv; charset=utf-8" },
      });
    if (path.endsWith("/logs.csv?from=nope"))
      return json(400, {
        success: false,
        code: "VALIDATION_ERROR",
        message: "from must be a real time",
      });
    return json(200, { success: true, data: { path, token: auth } });
  });
  return { fetch, calls, state };
}

function client(
  server: ReturnType<typeof fakeServer>,
  extra: Partial<ConstructorParameters<typeof ApiClient>[0]> = {},
) {
  const timers: { fn: () => void; ms: number }[] = [];
  const c = new ApiClient({
    fetch: server.fetch as unknown as typeof fetch,
    now: () => 1_000_000,
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    clearTimer: () => undefined,
    withLock: (fn) => fn(),
    ...extra,
  });
  return { c, timers };
}

describe("the console's API client", () => {
  it("downloads a file with the session's token, refreshing once on a 401, and reads an error's envelope", async () => {
    const server = fakeServer();
    const { c } = client(server);
    await c.login("admin", "pw");
    server.state.valid.clear(); // the access token has expired
    const blob = await c.download("/api/api-keys/1/logs.csv");
    expect(await blob.text()).toBe("id,timestamp\n1,2026-12-01T00:00:00.000Z\n");
    const tries = server.calls.filter((x) => x.path === "/api/api-keys/1/logs.csv");
    expect(tries.map((x) => x.headers.authorization)).toEqual(["Bearer t1", "Bearer t2"]);
    await expect(c.download("/api/api-keys/1/logs.csv?from=nope")).rejects.toMatchObject({
      status: 400,
      code: "VALIDATION_ERROR",
      message: "from must be a real time",
    });
  });

  it("signs in in cookie mode and keeps the access token in memory only", async () => {
    const server = fakeServer();
    const { c } = client(server);
    const s = await c.login("admin", "pw");
    expect(JSON.parse(server.calls[0]?.body ?? "{}")).toEqual({
      username: "admin",
      password: "pw",
      session: "cookie",
    });
    expect(s.accessToken).toBe("t1");
    const res = await c.get<{ token: string }>("/api/auth/me");
    expect(res.data.token).toBe("t1");
  });

  it("restores a session from the cookie on load, and stays quiet when there is none", async () => {
    const server = fakeServer();
    const { c } = client(server);
    expect((await c.refresh())?.accessToken).toBe("t1");
    const refresh = server.calls[0];
    expect(refresh?.method).toBe("POST");
    expect(refresh?.body).toBeUndefined();
    expect(refresh?.headers["content-type"]).toBeUndefined();

    const none = fakeServer();
    none.state.cookie = false;
    const ends: (SessionEnd | null)[] = [];
    const { c: c2 } = client(none);
    c2.subscribe((_s, end) => ends.push(end));
    expect(await c2.refresh()).toBeNull();
    expect(ends).toEqual([null]);
  });

  it("on a 401 refreshes once, repeats the call with the new token, and shares one refresh", async () => {
    const server = fakeServer();
    const { c } = client(server);
    await c.login("admin", "pw");
    server.state.valid.clear(); // the access token expired
    const [a, b] = await Promise.all([
      c.get<{ token: string }>("/api/a"),
      c.get<{ token: string }>("/api/b"),
    ]);
    expect(a.data.token).toBe("t2");
    expect(b.data.token).toBe("t2");
    expect(server.calls.filter((x) => x.path === "/api/auth/refresh")).toHaveLength(1);
  });

  it("ends the session with a clear message when the refresh is refused", async () => {
    const server = fakeServer();
    const { c } = client(server);
    const ends: (SessionEnd | null)[] = [];
    c.subscribe((_s, end) => ends.push(end));
    await c.login("admin", "pw");
    server.state.valid.clear();
    server.state.cookie = false;
    await expect(c.get("/api/a")).rejects.toMatchObject({ status: 401, code: "SESSION_ENDED" });
    expect(c.current).toBeNull();
    expect(ends.at(-1)?.reason).toBe("expired");
    expect(ends.at(-1)?.message).toBe(
      "Your session has ended: refresh token is not valid; sign in again.",
    );
  });

  it("refreshes a minute before the access token expires", async () => {
    const server = fakeServer();
    const { c, timers } = client(server);
    await c.login("admin", "pw");
    expect(timers.at(-1)?.ms).toBe((900 - 60) * 1000);
    timers.at(-1)?.fn();
    await vi.waitFor(() => expect(c.current?.accessToken).toBe("t2"));
  });

  it("signs out on the server, then locally, even when the server cannot be reached", async () => {
    const server = fakeServer();
    const { c } = client(server);
    const ends: (SessionEnd | null)[] = [];
    c.subscribe((_s, end) => ends.push(end));
    await c.login("admin", "pw");
    await c.logout();
    const out = server.calls.find((x) => x.path === "/api/auth/logout");
    expect(out?.headers.authorization).toBe("Bearer t1");
    expect(server.state.cookie).toBe(false);
    expect(c.current).toBeNull();
    expect(ends.at(-1)?.reason).toBe("signed-out");

    const down = new ApiClient({
      fetch: (async () => {
        throw new TypeError("fetch failed");
      }) as unknown as typeof fetch,
      setTimer: () => 0,
      clearTimer: () => undefined,
      withLock: (fn) => fn(),
    });
    await expect(down.get("/api/a")).rejects.toMatchObject({ code: "NETWORK_ERROR" });
    await down.logout();
    expect(down.current).toBeNull();
  });

  it("names its environment on every request: the switch's, or one call's own", async () => {
    const server = fakeServer();
    let env: "live" | "test" = "live";
    const { c } = client(server, { environment: () => env });
    await c.login("admin", "pw");
    await c.get("/api/a");
    env = "test";
    await c.post("/api/b", {});
    await c.get("/api/c", { environment: "live" });
    await c.del("/api/d");
    expect(server.calls.map((x) => [x.path, x.headers["Keygate-Environment"]])).toEqual([
      ["/api/auth/login", "live"],
      ["/api/a", "live"],
      ["/api/b", "test"],
      ["/api/c", "live"],
      ["/api/d", "test"],
    ]);
    // Without the option, every request names live (the server's default too).
    const plain = fakeServer();
    const { c: c2 } = client(plain);
    await c2.login("admin", "pw");
    expect(plain.calls[0]?.headers["Keygate-Environment"]).toBe("live");
  });

  it("surfaces the server's own message, code and field problems", async () => {
    const server = fakeServer();
    const { c } = client(server);
    await c.login("admin", "pw");
    const err = await c
      .post("/api/api-keys", { allowed_ips: ["1.1.1.1", "x"] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toBe(
      "invalid body: allowed_ips[1] not an IPv4 or IPv6 address",
    );
    expect((err as ApiError).code).toBe("VALIDATION_ERROR");
    expect(fieldErrors(err)).toEqual({ allowed_ips: "not an IPv4 or IPv6 address" });
  });
});
