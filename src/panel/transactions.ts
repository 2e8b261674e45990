import { type Fence, fenceOf, type Principal } from "../auth/principal.js";
import type { Environment } from "../keys/format.js";
import { conflict, notFound } from "../errors.js";
import {
  CURRENCY,
  DEFAULT_CURRENCY,
  fromMinorUnits,
  type Page,
  type Paged,
  Problems,
  toMinorUnits,
  type Window,
} from "./common.js";
import type { SubscriberRepo, SubscriberView } from "./subscribers.js";
import type { NewEvent } from "../events/catalogue.js";

export const TRANSACTION_TYPES = ["payment", "refund", "adjustment"] as const;
export type TransactionType = (typeof TRANSACTION_TYPES)[number];

export type TransactionRow = {
  id: number;
  subscriber_id: number;
  amount_minor: number;
  currency: string;
  type: TransactionType;
  reference: string | null;
  description: string | null;
  created_at: string;
  api_key_id: number | null;
  environment: Environment;
};

export type TransactionView = Omit<TransactionRow, "amount_minor"> & { amount: number };

export type TransactionFilter = {
  fence: Fence;
  subscriberId?: number;
  from?: string;
  to?: string;
};

export type NewTransaction = Omit<TransactionRow, "id" | "created_at"> & {
  reference_scope: number;
  created_by: number;
};

export interface TransactionRepo {
  list(f: TransactionFilter, w: Window): Promise<{ rows: TransactionRow[]; total: number }>;
  findById(id: number, fence: Fence): Promise<TransactionRow | null>;
  /**
   * Inserts unless a transaction with the same (environment, reference_scope, reference) exists, in
   * which case that one comes back with `created: false`. Atomic under concurrency.
   */
  insertOnce(
    row: NewTransaction,
    now: string,
    /** Emitted in the insert's transaction, only when a row is inserted. */
    event?: (t: TransactionRow) => NewEvent | null,
  ): Promise<{ row: TransactionRow; created: boolean }>;
}

export type TransactionInput = {
  subscriber_id: number;
  amount: number | string;
  currency?: string;
  type?: TransactionType;
  reference?: string;
  description?: string;
};

export function transactionView(t: TransactionRow): TransactionView {
  const { amount_minor, ...rest } = t;
  return { ...rest, amount: fromMinorUnits(amount_minor) };
}

/** Date bound for filters: `YYYY-MM-DD` covers that whole day (UTC), or an ISO timestamp. */
export function boundOf(value: string, end: boolean): string | null {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const d = new Date(`${value}T00:00:00.000Z`);
    if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== value) return null;
    if (end) d.setUTCDate(d.getUTCDate() + 1);
    return d.toISOString();
  }
  const t = Date.parse(value);
  return Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}T/.test(value) ? null : new Date(t).toISOString();
}

/**
 * The ledger. Transactions are immutable: a correction is a refund or an adjustment.
 * A repeated `reference` returns the first transaction and records nothing new.
 */
export class Transactions {
  constructor(
    private readonly repo: TransactionRepo,
    private readonly subscribers: SubscriberRepo,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(
    p: Principal,
    q: { subscriber_id?: number; from?: string; to?: string },
    page: Page,
  ): Promise<Paged<TransactionView>> {
    const problems = new Problems();
    const from = q.from === undefined ? undefined : boundOf(q.from, false);
    const to = q.to === undefined ? undefined : boundOf(q.to, true);
    if (from === null) problems.add("from", "must be YYYY-MM-DD or an ISO-8601 timestamp");
    if (to === null) problems.add("to", "must be YYYY-MM-DD or an ISO-8601 timestamp");
    problems.throwIfAny();
    const { rows, total } = await this.repo.list(
      {
        fence: fenceOf(p),
        subscriberId: q.subscriber_id,
        from: from ?? undefined,
        to: to ?? undefined,
      },
      { limit: page.perPage, offset: (page.page - 1) * page.perPage },
    );
    return {
      rows: rows.map(transactionView),
      meta: { page: page.page, per_page: page.perPage, total },
    };
  }

  async get(p: Principal, id: number): Promise<TransactionView> {
    const t = await this.repo.findById(id, fenceOf(p));
    if (!t) throw notFound(`transaction ${id}`);
    return transactionView(t);
  }

  async create(
    p: Principal,
    input: TransactionInput,
  ): Promise<{ data: TransactionView; created: boolean }> {
    const problems = new Problems();
    const amount = toMinorUnits(input.amount);
    if (amount === null || amount <= 0) {
      problems.add("amount", "must be a decimal greater than 0 with at most 2 places, e.g. 25.50");
    }
    const currency = input.currency ?? DEFAULT_CURRENCY;
    if (!CURRENCY.test(currency))
      problems.add("currency", "must be a 3-letter ISO 4217 code such as USD");
    const fence = fenceOf(p);
    const subscriber = await this.subscribers.findById(input.subscriber_id, fence);
    if (!subscriber)
      problems.add(
        "subscriber_id",
        `names subscriber ${input.subscriber_id}, and there is none visible to you${
          fence.environment === "test" ? " (a test key sees test subscribers only)" : ""
        }`,
      );
    problems.throwIfAny();
    const type = input.type ?? "payment";
    const { row, created } = await this.repo.insertOnce(
      {
        subscriber_id: input.subscriber_id,
        amount_minor: amount as number,
        currency,
        type,
        reference: input.reference ?? null,
        reference_scope: p.userId,
        description: input.description ?? null,
        api_key_id: p.key?.id ?? null,
        created_by: p.userId,
        environment: fence.environment,
      },
      this.now().toISOString(),
      (t) => ({
        type: "transaction.created",
        environment: t.environment,
        ownerId: (subscriber as SubscriberView).owner_id,
        data: transactionView(t),
      }),
    );
    if (
      !created &&
      (row.subscriber_id !== input.subscriber_id ||
        row.amount_minor !== amount ||
        row.currency !== currency ||
        row.type !== type)
    ) {
      throw conflict(
        `reference "${input.reference}" was already used for transaction ${row.id} with different details; use a new reference`,
      );
    }
    return { data: transactionView(row), created };
  }
}

export function isTransactionType(v: string): v is TransactionType {
  return (TRANSACTION_TYPES as readonly string[]).includes(v);
}
