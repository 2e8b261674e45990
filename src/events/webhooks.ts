import { randomBytes } from "node:crypto";
import type { Audit } from "../audit.js";
import { describe, fenceOf, type Principal } from "../auth/principal.js";
import { AppError, conflict, forbidden, notFound } from "../errors.js";
import type { Environment } from "../keys/format.js";
import type { AttemptRow, DeliveryEntry, EndpointRow, SqlWebhookRepo } from "../store/webhooks.js";
import { EVENT_TYPES, isEventType, TEST_EVENT } from "./catalogue.js";
import { hostProblem, urlProblem } from "./ssrf.js";

/** An endpoint as every answer shows it: never its signing secret. */
export type EndpointView = {
  id: number;
  url: string;
  description: string | null;
  /** The event types it takes, or `["*"]` for every event. */
  events: string[];
  enabled: boolean;
  environment: Environment;
  owner_id: number;
  /** Since when every attempt failed; null when the last one succeeded. */
  failing_since: string | null;
  disabled_at: string | null;
  /** Why Keygate disabled it (after days of failures); null when enabled or disabled by hand. */
  disabled_reason: string | null;
  /** Until when the secret before the last rotation still signs beside the new one. */
  previous_secret_until: string | null;
  created_at: string;
  updated_at: string;
};

export type DeliveryView = {
  id: number;
  message_id: string;
  event_type: string;
  status: "pending" | "succeeded" | "failed";
  attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  response_status: number | null;
  latency_ms: number | null;
  response_body: string | null;
  error: string | null;
  created_at: string;
};

/** One attempt of a delivery, as its history shows it. */
export type AttemptView = {
  /** Its number among the delivery's attempts, from 1. */
  attempt: number;
  /** When it was sent: its webhook-timestamp, to the millisecond. */
  attempted_at: string;
  outcome: "succeeded" | "failed";
  /** Asked by hand: a redelivery of a finished delivery, or a test message. */
  manual: boolean;
  /** The answer's HTTP status; null when none came. */
  response_status: number | null;
  latency_ms: number;
  error: string | null;
  /** The first 1 KiB of the answer's body. */
  response_body: string | null;
};

export type EndpointInput = {
  url?: string;
  events?: string[];
  description?: string | null;
  enabled?: boolean;
};

/** What an endpoint's secret is bound to when sealed under the master key: it opens for that endpoint only. */
export const webhookSecretBinding = (endpointId: number) => `webhook_endpoint:${endpointId}`;

/** A secret kept as given (no master key when it was stored), not sealed. */
export const isPlainWebhookSecret = (stored: string) => stored.startsWith("whsec_");

/** Endpoints one user may register: each one multiplies what every event sends. */
export const MAX_ENDPOINTS_PER_USER = 50;

/** The secret before a rotation keeps signing beside the new one this long. */
export const ROTATION_OVERLAP_MS = 86_400_000;

/** A new signing secret, as Standard Webhooks writes them: `whsec_` + base64 of 24 random bytes. */
export function newSecret(): string {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

export type WebhookServiceOptions = {
  repo: SqlWebhookRepo;
  audit: Audit;
  selfService: boolean;
  allowPrivate: boolean;
  now: () => Date;
  /** Seals a secret for storage (under the master key when there is one). */
  seal: (secret: string, endpointId: number) => string;
  /** Asks the delivery worker for a round now. */
  nudge: () => void;
};

/** Webhook endpoints: admins manage every one; with self-service, key owners their own. */
export class WebhookService {
  constructor(private readonly o: WebhookServiceOptions) {}

  view(w: EndpointRow): EndpointView {
    return {
      id: w.id,
      url: w.url,
      description: w.description,
      events: w.events === "*" ? ["*"] : (JSON.parse(w.events) as string[]),
      enabled: w.enabled === 1,
      environment: w.environment as Environment,
      owner_id: w.owner_id,
      failing_since: w.failing_since,
      disabled_at: w.disabled_at,
      disabled_reason: w.disabled_reason,
      previous_secret_until:
        w.previous_secret_until !== null && w.previous_secret_until > this.o.now().toISOString()
          ? w.previous_secret_until
          : null,
      created_at: w.created_at,
      updated_at: w.updated_at,
    };
  }

  async list(p: Principal): Promise<EndpointView[]> {
    this.requireMayUse(p, "read webhook endpoints");
    const fence = fenceOf(p);
    return (await this.o.repo.list(fence.ownerId, fence.environment)).map((w) => this.view(w));
  }

  async get(p: Principal, id: number): Promise<EndpointView> {
    return this.view(await this.visible(p, id));
  }

  async create(
    p: Principal,
    input: EndpointInput,
  ): Promise<{ data: EndpointView; secret: string }> {
    this.requireMayUse(p, "register webhook endpoints");
    const fields = await this.validate(input, true);
    if ((await this.o.repo.countOwned(p.userId)) >= MAX_ENDPOINTS_PER_USER)
      throw conflict(
        `you have ${MAX_ENDPOINTS_PER_USER} webhook endpoints, the most one user may register; remove one you no longer use (DELETE /api/webhooks/:id), or subscribe an existing one to more events`,
      );
    const now = this.o.now().toISOString();
    const secret = newSecret();
    const row = await this.o.repo.insert(
      {
        owner_id: p.userId,
        environment: fenceOf(p).environment,
        url: fields.url as string,
        description: fields.description ?? null,
        events: fields.events ?? "*",
        enabled: fields.enabled === false ? 0 : 1,
        previous_secret: null,
        previous_secret_until: null,
        failing_since: null,
        disabled_at: fields.enabled === false ? now : null,
        disabled_reason: null,
        created_at: now,
        updated_at: now,
      },
      (id) => this.o.seal(secret, id),
    );
    await this.o.audit.record(
      p,
      "webhook.create",
      { type: "webhook_endpoint", id: row.id },
      { url: row.url, events: this.view(row).events },
    );
    return { data: this.view(row), secret };
  }

  async update(p: Principal, id: number, input: EndpointInput): Promise<EndpointView> {
    const w = await this.visible(p, id);
    const fields = await this.validate(input, false);
    const now = this.o.now().toISOString();
    const patch: Parameters<SqlWebhookRepo["update"]>[1] = { updated_at: now };
    if (fields.url !== undefined) patch.url = fields.url;
    if (fields.events !== undefined) patch.events = fields.events;
    if (input.description !== undefined) patch.description = fields.description ?? null;
    if (fields.enabled === true && w.enabled !== 1) {
      // Enabled again: a fresh start, whatever failed before.
      Object.assign(patch, {
        enabled: 1,
        disabled_at: null,
        disabled_reason: null,
        failing_since: null,
      });
    } else if (fields.enabled === false && w.enabled === 1) {
      Object.assign(patch, { enabled: 0, disabled_at: now, disabled_reason: null });
    }
    const row = await this.o.repo.update(id, patch);
    await this.o.audit.record(
      p,
      "webhook.update",
      { type: "webhook_endpoint", id },
      { changed: Object.keys(input) },
    );
    if (fields.enabled === true) this.o.nudge();
    return this.view(row);
  }

  async remove(p: Principal, id: number): Promise<void> {
    const w = await this.visible(p, id);
    await this.o.repo.delete(id);
    await this.o.audit.record(
      p,
      "webhook.delete",
      { type: "webhook_endpoint", id },
      { url: w.url },
    );
  }

  /** A new signing secret, shown this once; the old one signs beside it for 24 hours. */
  async rotateSecret(p: Principal, id: number): Promise<{ data: EndpointView; secret: string }> {
    const w = await this.visible(p, id);
    const now = this.o.now();
    const secret = newSecret();
    const row = await this.o.repo.update(id, {
      secret: this.o.seal(secret, id),
      previous_secret: w.secret,
      previous_secret_until: new Date(now.getTime() + ROTATION_OVERLAP_MS).toISOString(),
      updated_at: now.toISOString(),
    });
    await this.o.audit.record(p, "webhook.rotate_secret", { type: "webhook_endpoint", id });
    return { data: this.view(row), secret };
  }

  async deliveries(
    p: Principal,
    id: number,
    q: { limit: number; beforeId?: number; status?: string },
  ): Promise<DeliveryView[]> {
    await this.visible(p, id);
    return (await this.o.repo.deliveries(id, q)).map(deliveryView);
  }

  /** A delivery's attempts, oldest first: of an endpoint this principal may see, or 404. */
  async attempts(
    p: Principal,
    id: number,
    deliveryId: number,
    q: { limit: number; after?: number },
  ): Promise<AttemptView[]> {
    await this.visible(p, id);
    if (!(await this.o.repo.delivery(id, deliveryId)))
      throw notFound(`delivery ${deliveryId} of webhook endpoint ${id}`);
    return (await this.o.repo.attempts(deliveryId, q)).map(attemptView);
  }

  /** Delivers one message again, now, with its original `webhook-id`. */
  async redeliver(p: Principal, id: number, deliveryId: number): Promise<DeliveryView> {
    const w = await this.visible(p, id);
    if (w.enabled !== 1)
      throw conflict(
        `webhook endpoint ${id} is disabled; enable it (PUT /api/webhooks/${id} with "enabled": true) before redelivering`,
      );
    const d = await this.o.repo.delivery(id, deliveryId);
    if (!d) throw notFound(`delivery ${deliveryId} of webhook endpoint ${id}`);
    await this.o.repo.redeliver(deliveryId, this.o.now().toISOString());
    await this.o.audit.record(
      p,
      "webhook.redeliver",
      { type: "webhook_endpoint", id },
      { delivery_id: deliveryId, message_id: d.message_id },
    );
    this.o.nudge();
    return deliveryView((await this.o.repo.delivery(id, deliveryId)) as DeliveryEntry);
  }

  /** Sends a `webhook.test` message to this endpoint alone, whatever events it takes. */
  async test(p: Principal, id: number): Promise<DeliveryView> {
    const w = await this.visible(p, id);
    if (w.enabled !== 1)
      throw conflict(`webhook endpoint ${id} is disabled; enable it before sending a test`);
    const now = this.o.now().toISOString();
    const payload = JSON.stringify({
      type: TEST_EVENT,
      timestamp: now,
      data: { endpoint_id: id, message: "a test message from Keygate" },
    });
    const deliveryId = await this.o.repo.testMessage(id, TEST_EVENT, payload, w.environment, now);
    this.o.nudge();
    return deliveryView((await this.o.repo.delivery(id, deliveryId)) as DeliveryEntry);
  }

  /** An endpoint this principal may see and change, or 404. */
  private async visible(p: Principal, id: number): Promise<EndpointRow> {
    this.requireMayUse(p, "manage webhook endpoints");
    const w = await this.o.repo.findById(id);
    const fence = fenceOf(p);
    if (
      !w ||
      w.environment !== fence.environment ||
      (fence.ownerId !== null && w.owner_id !== fence.ownerId)
    )
      throw notFound(`webhook endpoint ${id}`);
    return w;
  }

  private requireMayUse(p: Principal, what: string): void {
    if (p.via === "key") throw forbidden(`keys cannot ${what}; sign in to the /api surface`);
    if (p.role !== "admin" && !this.o.selfService)
      throw forbidden(
        `only an admin can ${what}; ${describe(p)} — ask an admin, or have the operator set KEYGATE_SELF_SERVICE_KEYS=true`,
      );
  }

  private async validate(
    input: EndpointInput,
    creating: boolean,
  ): Promise<{ url?: string; events?: string; description?: string | null; enabled?: boolean }> {
    const problems: { field: string; message: string }[] = [];
    const out: { url?: string; events?: string; description?: string | null; enabled?: boolean } =
      {};
    if (input.url === undefined) {
      if (creating) problems.push({ field: "url", message: "is required" });
    } else {
      const url = input.url.trim();
      const form = urlProblem(url);
      if (form !== null) problems.push({ field: "url", message: form });
      else {
        const host = await hostProblem(new URL(url).hostname, this.o.allowPrivate);
        if (host !== null) problems.push({ field: "url", message: `is refused: ${host}` });
        else out.url = url;
      }
    }
    if (input.events !== undefined) {
      const events = [...new Set(input.events)];
      if (events.length === 0)
        problems.push({
          field: "events",
          message: 'must name at least one event type, or be ["*"] for every event',
        });
      else if (events.includes("*")) {
        if (events.length > 1)
          problems.push({ field: "events", message: '"*" means every event: give it alone' });
        else out.events = "*";
      } else {
        events.forEach((e, i) => {
          if (!isEventType(e))
            problems.push({
              field: `events[${i}]`,
              message: `is not an event type; the types are ${EVENT_TYPES.join(", ")} (or "*" for all)`,
            });
        });
        out.events = JSON.stringify(EVENT_TYPES.filter((t) => events.includes(t)));
      }
    }
    if (input.description !== undefined && input.description !== null) {
      if (input.description.length > 500)
        problems.push({ field: "description", message: "must be at most 500 characters" });
      out.description = input.description;
    }
    if (input.enabled !== undefined) out.enabled = input.enabled;
    if (problems.length > 0)
      throw new AppError(
        "VALIDATION_ERROR",
        problems.map((x) => `${x.field} ${x.message}`).join("; "),
        problems,
      );
    return out;
  }
}

export function deliveryView(d: DeliveryEntry): DeliveryView {
  return {
    id: d.id,
    message_id: d.message_id,
    event_type: d.event_type,
    status: d.status as DeliveryView["status"],
    attempts: Number(d.attempts),
    next_attempt_at: d.next_attempt_at,
    last_attempt_at: d.last_attempt_at,
    response_status: d.response_status,
    latency_ms: d.latency_ms,
    response_body: d.response_body,
    error: d.error,
    created_at: d.created_at,
  };
}

export function attemptView(a: AttemptRow): AttemptView {
  return {
    attempt: Number(a.attempt),
    attempted_at: a.attempted_at,
    outcome: a.outcome as AttemptView["outcome"],
    manual: Number(a.manual) === 1,
    response_status: a.response_status,
    latency_ms: Number(a.latency_ms),
    error: a.error,
    response_body: a.response_body,
  };
}
