import type { Environment } from "../keys/format.js";

/**
 * Every event Keygate emits (SPEC §9), in the order the docs list them. The scheduler's events
 * (`key.expiring`, `key.expired`, `key.new_ip`, `key.refusals_spike`), `key.quota_low` and `key.leaked` are
 * emitted through the same outbox by the modules that detect them.
 */
export const EVENT_TYPES = [
  "key.created",
  "key.updated",
  "key.rolled",
  "key.revoked",
  "key.expiring",
  "key.expired",
  "key.leaked",
  "key.new_ip",
  "key.refusals_spike",
  "key.quota_low",
  "subscriber.created",
  "subscriber.updated",
  "subscriber.suspended",
  "subscriber.activated",
  "subscriber.deleted",
  "transaction.created",
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** Sent only to one endpoint, by `POST /api/webhooks/:id/test`; never fanned out. */
export const TEST_EVENT = "webhook.test" as const;

export function isEventType(v: string): v is EventType {
  return (EVENT_TYPES as readonly string[]).includes(v);
}

/**
 * An event as its producer hands it to the outbox. `data` describes the record changed and
 * never holds key material, a hash or a password; `ownerId` is the user whose record it is
 * (what a reseller's endpoint may receive), null for what belongs to no user.
 */
export type NewEvent = {
  type: EventType;
  data: Record<string, unknown>;
  environment: Environment;
  ownerId: number | null;
};

/** The body of every delivery (Standard Webhooks): `{ type, timestamp, data }`. */
export type EventPayload = { type: string; timestamp: string; data: Record<string, unknown> };
