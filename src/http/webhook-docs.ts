/**
 * The OpenAPI document's `webhooks` (OpenAPI 3.1): what Keygate POSTs to a registered endpoint
 * for each event of the catalogue, with an example body. Self-contained: no component refs.
 */
import { EVENT_TYPES, type EventType, TEST_EVENT } from "../events/catalogue.js";

type Json = Record<string, unknown>;

const AT = "2026-05-12T11:02:31.000Z";

const KEY = {
  id: 7,
  name: "Billing sync",
  key_prefix: "pk_live_ab12",
  environment: "live",
  owner_id: 1,
  permissions: ["*:read"],
  expires_at: null,
  revoked_at: null,
  status: "active",
};
/** A key as the scheduler's events describe it. */
const SCHEDULED_KEY = {
  id: 7,
  name: "Billing sync",
  key_prefix: "pk_live_ab12",
  environment: "live",
  owner_id: 1,
  expires_at: null,
};
const SUBSCRIBER = {
  id: 42,
  username: "alice",
  full_name: "Alice Doe",
  phone: null,
  email: "alice@example.com",
  service_id: 1,
  status: "active",
  expiry_date: "2026-06-12",
  owner_id: 2,
  environment: "live",
  created_at: AT,
  updated_at: AT,
};

/** What each event means and an example of its `data`. */
const EVENTS: Record<EventType | typeof TEST_EVENT, { summary: string; data: Json }> = {
  "key.created": { summary: "A key was minted (console, API or command line)", data: KEY },
  "key.updated": {
    summary: "A key was changed; `changed` names the fields sent",
    data: { ...KEY, changed: ["name", "allowed_ips"] },
  },
  "key.rolled": {
    summary:
      "A key was rolled: `data` is the old key (with its shortened expiry), `replaced_by` the new one",
    data: {
      ...KEY,
      expires_at: "2026-05-13T11:02:31.000Z",
      replaced_by: { ...KEY, id: 8, key_prefix: "pk_live_cd34" },
      grace_period_hours: 24,
    },
  },
  "key.revoked": {
    summary:
      "A key was revoked; `reason` when one was given (a bulk revocation's, or exposed for a key found exposed)",
    data: { ...KEY, revoked_at: AT, status: "revoked" },
  },
  "key.expiring": {
    summary:
      "A key expires in 7 days, then again in 1 day (the scheduler, once a minute, one instance)",
    data: {
      ...SCHEDULED_KEY,
      expires_at: "2026-05-19T11:02:31.000Z",
      days_left: 7,
      seconds_left: 604_800,
    },
  },
  "key.expired": {
    summary: "A key reached its expiry",
    data: { ...SCHEDULED_KEY, expires_at: AT, expired_at: AT },
  },
  "key.leaked": {
    summary:
      "A key was found exposed: reported by a secret scanner or presented by whoever found it; revoked (key.revoked follows in the same transaction) or flagged, by configuration",
    data: {
      ...KEY,
      revoked_at: AT,
      status: "revoked",
      action: "revoked",
      reported_by: "scanner",
      url: "https://github.com/example/repo/blob/main/.env",
      source: "content",
      token_type: "keygate_api_key",
      key_identifier: "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a",
    },
  },
  "key.new_ip": {
    summary:
      "A key's first successful call from an address it had not used in the previous 30 days",
    data: {
      ...SCHEDULED_KEY,
      ip: "203.0.113.9",
      first_call_at: AT,
      previously_seen_at: null,
    },
  },
  "key.refusals_spike": {
    summary: "50 or more refused calls (401, 403, 429) of a key within a 5-minute window",
    data: {
      ...SCHEDULED_KEY,
      refusals: 50,
      window_s: 300,
      window_start: "2026-05-12T11:00:00.000Z",
      threshold: 50,
    },
  },
  "key.quota_low": {
    summary:
      "A key's quota for the period under way reached 80 % (threshold_percent 80), then all of it (100: its calls are refused QUOTA_EXCEEDED until resets_at); once per key, period and threshold across instances",
    data: {
      ...SCHEDULED_KEY,
      threshold_percent: 80,
      quota: { limit: 10_000, period: "month", refill_day: 15 },
      used: 8_000,
      remaining: 2_000,
      period_start: "2026-04-15T00:00:00.000Z",
      resets_at: "2026-05-15T00:00:00.000Z",
    },
  },
  "subscriber.created": { summary: "A subscriber was created", data: SUBSCRIBER },
  "subscriber.updated": {
    summary: "A subscriber was changed; `changed` names the fields sent (never the password)",
    data: { ...SUBSCRIBER, changed: ["email"] },
  },
  "subscriber.suspended": {
    summary: "A subscriber was suspended",
    data: { ...SUBSCRIBER, status: "suspended" },
  },
  "subscriber.activated": { summary: "A subscriber was activated", data: SUBSCRIBER },
  "subscriber.deleted": { summary: "A subscriber was deleted", data: SUBSCRIBER },
  "transaction.created": {
    summary: "A transaction was recorded (a replayed reference emits nothing)",
    data: {
      id: 9,
      subscriber_id: 42,
      amount: 19.99,
      currency: "USD",
      type: "payment",
      reference: "inv-2026-0042",
      description: null,
      created_at: AT,
      api_key_id: 7,
      environment: "live",
    },
  },
  [TEST_EVENT]: {
    summary: "Sent by POST /api/webhooks/{id}/test to that endpoint alone",
    data: { endpoint_id: 3, message: "a test message from Keygate" },
  },
};

const HEADERS = [
  {
    name: "webhook-id",
    in: "header",
    required: true,
    description: "The message id: the same on every retry of this message; use it to deduplicate",
    schema: { type: "string", example: "msg_2KWPBgLlAfxdpx2AI54pPJ" },
  },
  {
    name: "webhook-timestamp",
    in: "header",
    required: true,
    description:
      "Seconds since the epoch when this attempt was signed; refuse old ones (e.g. > 5 min)",
    schema: { type: "string", example: "1778583751" },
  },
  {
    name: "webhook-signature",
    in: "header",
    required: true,
    description:
      "Space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>` signatures (two during a secret rotation); verify with any Standard Webhooks library and the endpoint's secret",
    schema: { type: "string", example: "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=" },
  },
];

/** The `webhooks` object of the document. */
export function webhookSection(): Json {
  return Object.fromEntries(
    [...EVENT_TYPES, TEST_EVENT].map((type) => {
      const e = EVENTS[type];
      return [
        type,
        {
          post: {
            operationId: `webhook${type
              .split(/[._]/)
              .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
              .join("")}`,
            tags: ["webhooks"],
            summary: e.summary,
            description:
              "Keygate POSTs this to every enabled endpoint subscribed to the event (of its environment; a non-admin's endpoint only for its own records). Answer 2xx within 10 s; anything else (a redirect too) is retried with backoff for more than 27 hours, with the same webhook-id.",
            security: [],
            parameters: HEADERS,
            requestBody: {
              required: true,
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    required: ["type", "timestamp", "data"],
                    properties: {
                      type: { type: "string", const: type },
                      timestamp: { type: "string", format: "date-time" },
                      data: {
                        type: "object",
                        description: "the record the event is about; never a key, hash or password",
                      },
                    },
                  },
                  example: { type, timestamp: AT, data: e.data },
                },
              },
            },
            responses: {
              "200": { description: "Received (any 2xx)" },
              "400": { description: "Refused (any other answer): retried later" },
            },
          },
        },
      ];
    }),
  );
}
