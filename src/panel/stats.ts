import { type Fence, fenceOf, type Principal } from "../auth/principal.js";
import { fromMinorUnits } from "./common.js";

export type StatsCounts = {
  subscribers: { total: number; active: number; suspended: number; expired: number };
  services: number;
  nas: number | null;
  transactions30d: { currency: string; count: number; amount_minor: number }[];
};

export interface StatsRepo {
  /** Subscribers and money inside the fence; services and NAS devices, which both environments share. */
  counts(fence: Fence, since: string, withNas: boolean): Promise<StatsCounts>;
}

/** Panel totals a principal may see: its own subscribers and money, NAS only for admins. */
export async function systemStats(repo: StatsRepo, p: Principal, now: Date) {
  const since = new Date(now.getTime() - 30 * 86_400_000).toISOString();
  const c = await repo.counts(fenceOf(p), since, p.role === "admin");
  return {
    subscribers: c.subscribers,
    services: c.services,
    ...(c.nas === null ? {} : { nas: c.nas }),
    transactions_30d: c.transactions30d.map((t) => ({
      currency: t.currency,
      count: t.count,
      amount: fromMinorUnits(t.amount_minor),
    })),
  };
}
