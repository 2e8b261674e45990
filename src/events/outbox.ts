import { randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import type { DB } from "../store/schema.js";
import type { EventPayload, NewEvent } from "./catalogue.js";

/** A message id as Standard Webhooks shows it (`webhook-id`): the same on every retry. */
export function messageId(): string {
  return `msg_${randomBytes(16).toString("base64url")}`;
}

/**
 * Writes an event to the outbox. Call it with the transaction that makes the change, so the
 * event exists exactly when the change does; the delivery worker fans it out after commit.
 * Answers the message id (`webhook-id`).
 */
export async function emitEvent(trx: Kysely<DB>, event: NewEvent, now: string): Promise<string> {
  const id = messageId();
  const timestamp = now;
  const payload: EventPayload = { type: event.type, timestamp, data: event.data };
  await trx
    .insertInto("events")
    .values({
      message_id: id,
      type: event.type,
      environment: event.environment,
      owner_id: event.ownerId,
      payload: JSON.stringify(payload),
      created_at: timestamp,
      dispatched_at: null,
    })
    .execute();
  return id;
}

/**
 * An event producer's hook into a repository write: the event (or events, such as
 * `key.revoked` with the `key.leaked` that caused it) to emit, given the row written.
 */
export type EventOf<T> = (row: T) => NewEvent | readonly NewEvent[] | null;
