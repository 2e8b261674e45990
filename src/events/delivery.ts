import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import type { EndpointRow, SqlWebhookRepo } from "../store/webhooks.js";
import { post } from "./sender.js";

/**
 * When a failed delivery is tried again, after each failure in turn (Standard Webhooks'
 * usual schedule): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight attempts over more than
 * 27 hours, each wait stretched by up to 20 % of jitter (never shortened).
 */
export const RETRY_SCHEDULE_MS = [
  5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
];

/** An endpoint failing every attempt for this long is disabled (it says why). */
export const DISABLE_AFTER_MS = 5 * 86_400_000;

/**
 * How an attempt ended: `success` (2xx), `failure` (to be tried again), `gave_up` (failed, and
 * it was the last attempt); and `disabled`, once, when an endpoint is disabled for failing.
 */
export type DeliveryOutcome = "success" | "failure" | "gave_up" | "disabled";

export type DeliveryOptions = {
  repo: SqlWebhookRepo;
  /** The endpoint's current signing secret (`whsec_…`) and, during a rotation, the previous one. */
  secretsOf: (endpoint: EndpointRow, now: Date) => string[];
  now: () => Date;
  allowPrivate: boolean;
  /** Single-process stores (SQLite): every claim found at start is stale and released. */
  singleProcess: boolean;
  retryScheduleMs?: readonly number[];
  pollMs?: number;
  /** How long a claim holds: longer than an attempt can take. */
  leaseMs?: number;
  timeoutMs?: number;
  disableAfterMs?: number;
  batch?: number;
  /** Up to this much of each wait is added at random (0.2 = 20 %). */
  jitter?: number;
  /** Called once per attempt's outcome (and once when an endpoint is disabled): for metrics. */
  onDelivery?: (outcome: DeliveryOutcome) => void;
  warn?: (msg: string) => void;
};

/**
 * Delivers the outbox: fans events out into deliveries, claims due ones (each by one
 * instance), signs and POSTs them, and schedules retries. At least once: a delivery whose
 * instance died is claimed again once its lease is over, with the same `webhook-id`.
 */
export class DeliveryWorker {
  /** Attempts by outcome since start, and endpoints disabled. */
  readonly counts: Record<DeliveryOutcome, number> = {
    success: 0,
    failure: 0,
    gave_up: 0,
    disabled: 0,
  };
  onDelivery: ((outcome: DeliveryOutcome) => void) | undefined;
  private readonly id = randomBytes(8).toString("hex");
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private wake = false;
  /** Attempts under way: at most `batch`. */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly o: Required<Omit<DeliveryOptions, "onDelivery" | "warn">> &
    Pick<DeliveryOptions, "warn">;

  constructor(opts: DeliveryOptions) {
    this.o = {
      retryScheduleMs: RETRY_SCHEDULE_MS,
      pollMs: 1_000,
      leaseMs: 60_000,
      timeoutMs: 10_000,
      disableAfterMs: DISABLE_AFTER_MS,
      batch: 50,
      jitter: 0.2,
      ...opts,
    };
    this.onDelivery = opts.onDelivery;
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.o.singleProcess) await this.o.repo.releaseClaims();
    this.schedule(0);
  }

  /** Asks for a round now (after an event was written, or a redelivery asked). */
  nudge(): void {
    if (this.stopped) return;
    if (this.running) this.wake = true;
    else this.schedule(0);
  }

  /** Stops polling and waits for the round under way (its attempts are recorded). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    await Promise.all(this.inFlight);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.round()
        .then((busy) => {
          this.running = null;
          const again = busy || this.wake;
          this.wake = false;
          this.schedule(again ? 0 : this.o.pollMs);
        })
        .catch((err: unknown) => {
          this.running = null;
          this.o.warn?.(`webhook delivery round failed, will retry: ${(err as Error).message}`);
          this.schedule(this.o.pollMs);
        });
    }, ms);
    this.timer.unref();
  }

  /** One round: fan out, then deliver what is due. True when there may be more to do at once. */
  /**
   * One round: fan out, then claim what is due, up to `batch` attempts in flight. Attempts are
   * not awaited here, so an endpoint that takes its full timeout holds one slot, not the
   * others' deliveries. True when there may be more to do at once.
   */
  async round(): Promise<boolean> {
    const now = this.o.now();
    const fanned = await this.o.repo.fanOut(now.toISOString(), 200, matches);
    const room = this.o.batch - this.inFlight.size;
    if (room <= 0) return false;
    const due = await this.o.repo.claim(
      this.id,
      now.toISOString(),
      new Date(now.getTime() + this.o.leaseMs).toISOString(),
      room,
    );
    for (const d of due) {
      const attempt: Promise<void> = this.attempt(d)
        .catch((err: unknown) =>
          this.o.warn?.(
            `webhook delivery ${d.id} not recorded, it is tried again once its claim expires: ${(err as Error).message}`,
          ),
        )
        .finally(() => {
          const wasFull = this.inFlight.size >= this.o.batch;
          this.inFlight.delete(attempt);
          if (wasFull) this.nudge();
        });
      this.inFlight.add(attempt);
    }
    return fanned === 200 || due.length === room;
  }

  private async attempt(d: Awaited<ReturnType<SqlWebhookRepo["claim"]>>[number]): Promise<void> {
    const at = this.o.now();
    let secrets: string[];
    try {
      secrets = this.o.secretsOf(d.endpoint, at);
    } catch (err) {
      secrets = [];
      this.o.warn?.(
        `webhook endpoint ${d.endpoint.id}: its signing secret cannot be opened: ${(err as Error).message}`,
      );
    }
    const signature = secrets.map((s) => new Webhook(s).sign(d.messageId, at, d.payload)).join(" ");
    const result =
      secrets.length === 0
        ? {
            ok: false,
            status: null,
            latencyMs: 0,
            body: null,
            error: "not sent: the signing secret cannot be opened with this server's master key",
          }
        : await post(
            d.endpoint.url,
            {
              "webhook-id": d.messageId,
              "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
              "webhook-signature": signature,
              "user-agent": "Keygate-Webhooks/1",
            },
            d.payload,
            { allowPrivate: this.o.allowPrivate, timeoutMs: this.o.timeoutMs },
          );
    const attempts = d.attempts + 1;
    const finishedAt = this.o.now();
    const schedule = this.o.retryScheduleMs;
    const last = d.manual === 1 || attempts > schedule.length;
    const wait = last ? 0 : (schedule[attempts - 1] as number);
    const next = last
      ? null
      : new Date(finishedAt.getTime() + wait * (1 + Math.random() * this.o.jitter)).toISOString();
    const kept = await this.o.repo.recordAttempt(d.id, this.id, {
      status: result.ok ? "succeeded" : last ? "failed" : "pending",
      attempts,
      nextAttemptAt: result.ok ? null : next,
      sentAt: at.toISOString(),
      at: finishedAt.toISOString(),
      manual: d.manual === 1,
      ok: result.ok,
      responseStatus: result.status,
      latencyMs: result.latencyMs,
      responseBody: result.body,
      error: result.error,
    });
    if (!kept) return;
    this.report(result.ok ? "success" : last ? "gave_up" : "failure");
    if (result.ok) {
      await this.o.repo.endpointSucceeded(d.endpoint.id);
      return;
    }
    const disabled = await this.o.repo.endpointFailed(
      d.endpoint.id,
      finishedAt.toISOString(),
      new Date(finishedAt.getTime() - this.o.disableAfterMs).toISOString(),
      (since) =>
        `disabled automatically at ${finishedAt.toISOString()}: every delivery failed since ${since} (${Math.round(this.o.disableAfterMs / 86_400_000)} days); the last attempt: ${result.error ?? "failed"}. Fix the endpoint, then enable it again`,
    );
    if (disabled) this.report("disabled");
  }

  private report(outcome: DeliveryOutcome): void {
    this.counts[outcome]++;
    try {
      this.onDelivery?.(outcome);
    } catch {
      // a metrics callback never stops deliveries
    }
  }
}

/**
 * Whether an endpoint takes an event: of its environment, made since it was registered, of a
 * type it subscribed to (or all),
 * and, for an endpoint of a reseller, about that reseller's own records only.
 */
export function matches(
  event: { type: string; environment: string; owner_id: number | null; created_at: string },
  endpoint: EndpointRow & { owner_role: string },
): boolean {
  if (endpoint.environment !== event.environment) return false;
  // An endpoint receives what happens from its registration on, not what was waiting.
  if (endpoint.created_at > event.created_at) return false;
  if (endpoint.owner_role !== "admin" && event.owner_id !== endpoint.owner_id) return false;
  if (endpoint.events === "*") return true;
  return (JSON.parse(endpoint.events) as string[]).includes(event.type);
}
