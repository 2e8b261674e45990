/**
 * The records the `/api` surface answers with, by the names the console uses. Each is the
 * type generated from the server's own OpenAPI document (`api-types.ts`, written by
 * `npm run openapi`), so a field the server adds, drops or narrows shows up here as a type
 * error rather than as a surprise in the browser.
 */
import type { components } from "./api-types";

type Schemas = components["schemas"];

export type ApiKey = Schemas["ApiKey"];

/** The first that applies: revoked, owner_deleted, owner_disabled, expired, active. */
export type KeyStatus = ApiKey["status"];

export type KeyStats = Schemas["ApiKeyStats"];

/** One call of a key's log; `id` is the cursor for the next (older) page. */
export type CallLog = Schemas["CallLogEntry"];

export type Activity = Schemas["ApiKeyActivity"];

/** `GET /api/auth/me`: the signed-in user, what it may do, and the server's defaults. */
export type Me = Schemas["Me"];

export type UserRow = Schemas["User"];

/** A subscriber; `password` is there once, when the server generated it. */
export type Subscriber = Schemas["SubscriberWithPassword"];

export type Service = Schemas["Service"];

export type Nas = Schemas["Nas"];

export type Transaction = Schemas["Transaction"];

export type UsageDay = Schemas["UsageDay"];

export type UsageReport = Schemas["UsageReport"];

export type SystemStats = Schemas["SystemStats"];

export type AuditEntry = Schemas["AuditEntry"];

/** `GET /api/auth/2fa`: the signed-in user's two-factor sign-in. */
export type TwoFactorStatus = Schemas["TwoFactorStatus"];

/** `POST /api/auth/2fa/enrol`: the new secret, shown this once. */
export type TwoFactorEnrolment = Schemas["TwoFactorEnrolment"];
