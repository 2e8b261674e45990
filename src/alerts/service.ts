import { type Principal, visibleOwner } from "../auth/principal.js";
import { notFound } from "../errors.js";
import type { Environment } from "../keys/format.js";

export type Severity = "critical" | "warning" | "info";

/** What an alert links to: a key (`/keys/:id` in the console) or a webhook endpoint. */
export type AlertTarget = { type: "api_key" | "webhook_endpoint"; id: number };

/**
 * An alert to raise. `ownerId` is the user whose key it concerns (they see it beside the
 * admins); leave it out for one only admins see. `details` is shown as is: never a secret.
 */
export type NewAlert = {
  /** `key.leaked`, `key.refusals_spike`, `key.new_ip`, `webhook.failing`, … */
  kind: string;
  severity: Severity;
  /** A few words: "Leaked key revoked". */
  title: string;
  /** One sentence naming the record and what happened. */
  message: string;
  target?: AlertTarget | null;
  ownerId?: number | null;
  environment?: Environment;
  details?: Record<string, unknown> | null;
};

export type StoredAlert = Required<NewAlert> & { id: number; createdAt: string };

/** A key whose expiry falls within the alert window. */
export type ExpiringKey = {
  id: number;
  name: string;
  prefix: string;
  ownerId: number;
  expiresAt: string;
};

/** A webhook endpoint whose deliveries keep failing, or that was disabled for it. */
export type FailingWebhook = {
  id: number;
  url: string;
  ownerId: number;
  failingSince: string | null;
  disabledAt: string | null;
  disabledReason: string | null;
};

/** An endpoint failing this long is alerted (a single failed attempt is not news). */
export const WEBHOOK_FAILING_AFTER_MS = 3_600_000;

/** An alert as the console and `GET /api/alerts` show it. */
export type AlertView = {
  /** A stored alert's number, or a computed alert's name (`expiring:<key id>:<expiry ms>`). */
  id: string;
  kind: string;
  severity: Severity;
  title: string;
  message: string;
  target: AlertTarget | null;
  /** The console page it concerns, e.g. `/keys/12`; null when none. */
  link: string | null;
  environment: Environment;
  details: Record<string, unknown> | null;
  created_at: string;
};

export interface AlertRepo {
  insert(a: Required<NewAlert> & { createdAt: string }): Promise<number>;
  /** Alerts since `since`, of one environment, all owners' (null) or one owner's, newest first. */
  list(q: {
    ownerId: number | null;
    environment: Environment;
    since: string;
    limit: number;
  }): Promise<StoredAlert[]>;
  findById(id: number): Promise<StoredAlert | null>;
  /** Unrevoked keys of active owners expiring in (from, to], not rolled into another. */
  expiringKeys(q: {
    ownerId: number | null;
    environment: Environment;
    from: string;
    to: string;
  }): Promise<ExpiringKey[]>;
  /**
   * Enabled endpoints failing since `failingBefore` or earlier, and endpoints Keygate disabled
   * for failing (a disabled_reason), of one environment, all owners' (null) or one owner's.
   */
  failingWebhooks(q: {
    ownerId: number | null;
    environment: Environment;
    failingBefore: string;
  }): Promise<FailingWebhook[]>;
  dismissed(userId: number): Promise<Set<string>>;
  /** Remembers a dismissal; dismissing twice is one dismissal. */
  dismiss(userId: number, ref: string, at: string): Promise<void>;
}

const DAY = 86_400_000;
/** Keys expiring within this are alerted. */
export const EXPIRY_WINDOW_DAYS = 7;
/** Stored alerts older than this are no longer listed. */
export const ALERT_HORIZON_DAYS = 30;
const MAX_STORED = 200;

export const EXPIRING_REF = /^expiring:(\d{1,10}):(\d{1,15})$/;

/** The notifications area: alerts raised by events, and keys about to expire. */
export class Alerts {
  constructor(
    private readonly repo: AlertRepo,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Raises an alert; answers its id. Any module may call it (through `kg.alerts`). */
  raise(a: NewAlert): Promise<number> {
    return this.repo.insert({
      kind: a.kind,
      severity: a.severity,
      title: a.title,
      message: a.message,
      target: a.target ?? null,
      ownerId: a.ownerId ?? null,
      environment: a.environment ?? "live",
      details: a.details ?? null,
      createdAt: this.now().toISOString(),
    });
  }

  /** What this principal should see now, newest first: not dismissed by them, of their environment. */
  async list(p: Principal): Promise<AlertView[]> {
    const dismissed = await this.repo.dismissed(p.userId);
    return (await this.all(p)).filter((a) => !dismissed.has(a.id));
  }

  /** Dismisses an alert this principal sees (again is fine); 404 for any other. */
  async dismiss(p: Principal, ref: string): Promise<void> {
    const found = (await this.all(p)).some((a) => a.id === ref);
    if (!found) throw notFound(`alert ${ref}`);
    await this.repo.dismiss(p.userId, ref, this.now().toISOString());
  }

  private async all(p: Principal): Promise<AlertView[]> {
    const now = this.now();
    const ownerId = visibleOwner(p);
    const environment = p.environment ?? "live";
    const [stored, expiring, failing] = await Promise.all([
      this.repo.list({
        ownerId,
        environment,
        since: new Date(now.getTime() - ALERT_HORIZON_DAYS * DAY).toISOString(),
        limit: MAX_STORED,
      }),
      this.repo.expiringKeys({
        ownerId,
        environment,
        from: now.toISOString(),
        to: new Date(now.getTime() + EXPIRY_WINDOW_DAYS * DAY).toISOString(),
      }),
      this.repo.failingWebhooks({
        ownerId,
        environment,
        failingBefore: new Date(now.getTime() - WEBHOOK_FAILING_AFTER_MS).toISOString(),
      }),
    ]);
    const views = [
      ...stored.map((a) => storedView(a)),
      ...expiring.map((k) => expiringView(k, environment, now.getTime())),
      ...failing.map((w) => failingView(w, environment)),
    ];
    return views.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  }
}

function linkOf(target: AlertTarget | null): string | null {
  if (target === null) return null;
  // The console lists endpoints on one page, whose ?deliveries=<id> opens that endpoint's log.
  return target.type === "api_key" ? `/keys/${target.id}` : `/webhooks?deliveries=${target.id}`;
}

function storedView(a: StoredAlert): AlertView {
  return {
    id: String(a.id),
    kind: a.kind,
    severity: a.severity,
    title: a.title,
    message: a.message,
    target: a.target,
    link: linkOf(a.target),
    environment: a.environment,
    details: a.details,
    created_at: a.createdAt,
  };
}

/** A key expiring soon: raised when it enters the window; critical within a day. */
function expiringView(k: ExpiringKey, environment: Environment, now: number): AlertView {
  const at = Date.parse(k.expiresAt);
  const left = at - now;
  const hours = Math.max(1, Math.round(left / 3_600_000));
  const when =
    hours < 48 ? `in ${hours} hour${hours === 1 ? "" : "s"}` : `in ${Math.round(left / DAY)} days`;
  const target: AlertTarget = { type: "api_key", id: k.id };
  return {
    id: `expiring:${k.id}:${at}`,
    kind: "key.expiring",
    severity: left <= DAY ? "critical" : "warning",
    title: "Key expiring soon",
    message: `Key "${k.name}" (${k.prefix}…) expires ${when}, at ${k.expiresAt}: roll it, or move its expiry`,
    target,
    link: linkOf(target),
    environment,
    details: { expires_at: k.expiresAt, owner_id: k.ownerId },
    created_at: new Date(at - EXPIRY_WINDOW_DAYS * DAY).toISOString(),
  };
}

/**
 * An endpoint failing for an hour or more (warning), or disabled for failing (critical). Its
 * id names the spell of failures, so a dismissed alert comes back when a new spell starts.
 */
function failingView(w: FailingWebhook, environment: Environment): AlertView {
  const target: AlertTarget = { type: "webhook_endpoint", id: w.id };
  const disabled = w.disabledAt !== null;
  const since = (disabled ? w.disabledAt : w.failingSince) as string;
  return {
    id: `webhook:${w.id}:${Date.parse(since)}`,
    kind: disabled ? "webhook.disabled" : "webhook.failing",
    severity: disabled ? "critical" : "warning",
    title: disabled ? "Webhook endpoint disabled" : "Webhook deliveries failing",
    message: disabled
      ? `The endpoint ${w.url} was disabled: ${w.disabledReason ?? "its deliveries kept failing"}`
      : `Every delivery to ${w.url} has failed since ${w.failingSince}; its delivery log says why. Keygate keeps retrying, and disables it after 5 days of failures`,
    target,
    link: linkOf(target),
    environment,
    details: {
      url: w.url,
      failing_since: w.failingSince,
      disabled_at: w.disabledAt,
      owner_id: w.ownerId,
    },
    created_at: since,
  };
}
