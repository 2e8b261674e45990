import type { Principal } from "../auth/principal.js";
import { parseDateOnly } from "../keys/expiry.js";
import type { Environment } from "../keys/format.js";
import { addDays, Problems, today } from "./common.js";
import type { Subscribers } from "./subscribers.js";

export type UsageDay = {
  date: string;
  bytes_in: number;
  bytes_out: number;
  session_seconds: number;
};

export interface UsageRepo {
  /** Adds to the subscriber's totals for that day (creating the day when absent). */
  add(subscriberId: number, day: UsageDay, environment: Environment): Promise<void>;
  range(subscriberId: number, from: string, to: string): Promise<UsageDay[]>;
}

export type UsageReport = {
  subscriber_id: number;
  from: string;
  to: string;
  days: UsageDay[];
  totals: { bytes_in: number; bytes_out: number; session_seconds: number };
};

const MAX_RANGE_DAYS = 366;

/** Daily usage per subscriber: accounting records add to a day, reads return days and totals. */
export class Usage {
  constructor(
    private readonly repo: UsageRepo,
    private readonly subscribers: Subscribers,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async record(
    p: Principal,
    subscriberId: number,
    rec: { date?: string; bytes_in?: number; bytes_out?: number; session_seconds?: number },
  ): Promise<UsageDay> {
    const subscriber = await this.subscribers.get(p, subscriberId);
    const date = rec.date ?? today(this.now());
    const problems = new Problems();
    if (!parseDateOnly(date)) problems.add("date", "must be a real date as YYYY-MM-DD");
    problems.throwIfAny();
    const day = {
      date,
      bytes_in: rec.bytes_in ?? 0,
      bytes_out: rec.bytes_out ?? 0,
      session_seconds: rec.session_seconds ?? 0,
    };
    await this.repo.add(subscriberId, day, subscriber.environment);
    return day;
  }

  async report(
    p: Principal,
    subscriberId: number,
    q: { from?: string; to?: string },
  ): Promise<UsageReport> {
    await this.subscribers.get(p, subscriberId);
    const problems = new Problems();
    // Each date is checked before any arithmetic is done with it.
    const to = q.to ?? today(this.now());
    if (!parseDateOnly(to)) problems.add("to", "must be a real date as YYYY-MM-DD");
    if (q.from !== undefined && !parseDateOnly(q.from))
      problems.add("from", "must be a real date as YYYY-MM-DD");
    problems.throwIfAny();
    const from = q.from ?? addDays(to, -29);
    if (from > to) problems.add("from", "must not be after to");
    else if (addDays(from, MAX_RANGE_DAYS) <= to)
      problems.add("to", `range must span at most ${MAX_RANGE_DAYS} days`);
    problems.throwIfAny();
    const days = await this.repo.range(subscriberId, from, to);
    const totals = { bytes_in: 0, bytes_out: 0, session_seconds: 0 };
    for (const d of days) {
      totals.bytes_in += d.bytes_in;
      totals.bytes_out += d.bytes_out;
      totals.session_seconds += d.session_seconds;
    }
    return { subscriber_id: subscriberId, from, to, days, totals };
  }
}
