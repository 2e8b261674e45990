import { afterEach, describe, expect, it, vi } from "vitest";
import { decide } from "./limiter.js";
import { MemoryLimiter } from "./memory.js";

describe("decide", () => {
  it("aligns windows to multiples of windowMs", () => {
    expect(decide(undefined, 5, 1_000, 2_500, true).state.start).toBe(2_000);
    expect(decide(undefined, 5, 1_000, 2_000, true).state.start).toBe(2_000);
    expect(decide(undefined, 5, 1_000, 2_999, true).state.start).toBe(2_000);
    expect(decide(undefined, 5, 60_000, 125_000, true).state.start).toBe(120_000);
  });

  it("reports resetMs as the time left until the window ends", () => {
    expect(decide(undefined, 5, 1_000, 2_000, true).decision.resetMs).toBe(1_000);
    expect(decide(undefined, 5, 1_000, 2_500, true).decision.resetMs).toBe(500);
    expect(decide(undefined, 5, 1_000, 2_999, true).decision.resetMs).toBe(1);
  });

  it("counts a hit and reports the remaining budget", () => {
    const first = decide(undefined, 3, 1_000, 2_100, true);
    expect(first.state).toEqual({ start: 2_000, count: 1 });
    expect(first.decision).toEqual({ allowed: true, limit: 3, remaining: 2, resetMs: 900 });
    const second = decide(first.state, 3, 1_000, 2_200, true);
    expect(second.state.count).toBe(2);
    expect(second.decision.remaining).toBe(1);
  });

  it("does not count when peeking", () => {
    const state = { start: 2_000, count: 1 };
    const peek = decide(state, 3, 1_000, 2_100, false);
    expect(peek.state).toEqual({ start: 2_000, count: 1 });
    expect(peek.decision).toEqual({ allowed: true, limit: 3, remaining: 2, resetMs: 900 });
  });

  it("refuses in a full window without counting further", () => {
    const full = { start: 2_000, count: 3 };
    const hit = decide(full, 3, 1_000, 2_400, true);
    expect(hit.decision).toEqual({ allowed: false, limit: 3, remaining: 0, resetMs: 600 });
    expect(hit.state.count).toBe(3);
    expect(decide(full, 3, 1_000, 2_400, false).decision.allowed).toBe(false);
  });

  it("allows again in the next window, ignoring the previous window's count", () => {
    const full = { start: 2_000, count: 3 };
    const next = decide(full, 3, 1_000, 3_000, true);
    expect(next.state).toEqual({ start: 3_000, count: 1 });
    expect(next.decision).toEqual({ allowed: true, limit: 3, remaining: 2, resetMs: 1_000 });
  });

  it("allows the last unit of the budget and refuses the one after", () => {
    let state = decide(undefined, 2, 1_000, 0, true).state;
    const last = decide(state, 2, 1_000, 1, true);
    expect(last.decision).toMatchObject({ allowed: true, remaining: 0 });
    state = last.state;
    expect(decide(state, 2, 1_000, 2, true).decision.allowed).toBe(false);
  });

  it("refuses everything with a limit of 0", () => {
    const d = decide(undefined, 0, 1_000, 0, true);
    expect(d.decision).toMatchObject({ allowed: false, remaining: 0 });
    expect(d.state.count).toBe(0);
  });
});

describe("MemoryLimiter", () => {
  const limiters: MemoryLimiter[] = [];
  function make(...args: ConstructorParameters<typeof MemoryLimiter>): MemoryLimiter {
    const l = new MemoryLimiter(...args);
    limiters.push(l);
    return l;
  }
  afterEach(() => {
    for (const l of limiters.splice(0)) l.close();
    vi.useRealTimers();
  });

  it("counts hits per bucket until the limit, then refuses", () => {
    const l = make();
    expect(l.hit("a", 2, 1_000, 100)).toEqual({
      allowed: true,
      limit: 2,
      remaining: 1,
      resetMs: 900,
    });
    expect(l.hit("a", 2, 1_000, 200).remaining).toBe(0);
    expect(l.hit("a", 2, 1_000, 300)).toEqual({
      allowed: false,
      limit: 2,
      remaining: 0,
      resetMs: 700,
    });
  });

  it("keeps buckets independent", () => {
    const l = make();
    l.hit("a", 1, 1_000, 0);
    expect(l.hit("a", 1, 1_000, 0).allowed).toBe(false);
    expect(l.hit("b", 1, 1_000, 0).allowed).toBe(true);
  });

  it("allows again once the next window starts", () => {
    const l = make();
    l.hit("a", 1, 1_000, 500);
    expect(l.hit("a", 1, 1_000, 999).allowed).toBe(false);
    expect(l.hit("a", 1, 1_000, 1_000)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it("peek reports without counting", () => {
    const l = make();
    expect(l.peek("a", 2, 1_000, 0)).toEqual({
      allowed: true,
      limit: 2,
      remaining: 2,
      resetMs: 1_000,
    });
    expect(l.size).toBe(0);
    l.hit("a", 2, 1_000, 0);
    for (let i = 0; i < 5; i++) expect(l.peek("a", 2, 1_000, 0).remaining).toBe(1);
    expect(l.hit("a", 2, 1_000, 0).allowed).toBe(true);
    expect(l.peek("a", 2, 1_000, 0).allowed).toBe(false);
  });

  it("reset forgets a bucket's count", () => {
    const l = make();
    l.hit("a", 1, 1_000, 0);
    l.hit("b", 1, 1_000, 0);
    l.reset("a");
    expect(l.size).toBe(1);
    expect(l.hit("a", 1, 1_000, 0).allowed).toBe(true);
    expect(l.hit("b", 1, 1_000, 0).allowed).toBe(false);
  });

  it("sweep drops windows that have ended and keeps current ones", () => {
    const l = make();
    l.hit("old", 5, 1_000, 100); // window 0..1000
    l.hit("long", 5, 10_000, 100); // window 0..10000
    l.hit("new", 5, 1_000, 1_500); // window 1000..2000
    expect(l.size).toBe(3);
    l.sweep(999);
    expect(l.size).toBe(3);
    l.sweep(1_000);
    expect(l.size).toBe(2);
    l.sweep(2_000);
    expect(l.size).toBe(1);
    l.sweep(10_000);
    expect(l.size).toBe(0);
  });

  it("a swept bucket starts afresh", () => {
    const l = make();
    l.hit("a", 1, 1_000, 0);
    l.sweep(5_000);
    expect(l.hit("a", 1, 1_000, 5_000)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it("sweeps on its own timer using the injected clock, until closed", () => {
    vi.useFakeTimers();
    let clock = 0;
    const l = make(1_000, () => clock);
    l.hit("a", 5, 500, 0); // window 0..500
    clock = 400;
    vi.advanceTimersByTime(1_000);
    expect(l.size).toBe(1);
    clock = 500;
    vi.advanceTimersByTime(1_000);
    expect(l.size).toBe(0);
    l.hit("b", 5, 500, 500);
    l.close();
    clock = 10_000;
    vi.advanceTimersByTime(5_000);
    expect(l.size).toBe(1);
  });
});
