import { actorId, type Principal } from "./auth/principal.js";

export type AuditEntry = {
  id: number;
  actor_id: number | null;
  actor_username: string | null;
  via: string;
  action: string;
  target_type: string;
  target_id: string | null;
  details: Record<string, unknown> | null;
  ip: string | null;
  created_at: string;
};

/** The trail's orders: by time either way, or by who or what (then newest first). */
export const AUDIT_SORTS = ["newest", "oldest", "actor", "action"] as const;
export type AuditSort = (typeof AUDIT_SORTS)[number];

export type AuditQuery = {
  limit: number;
  offset: number;
  action?: string;
  targetType?: string;
  /** ISO timestamps as stored: entries at or after `from`, and before `to`. */
  from?: string;
  to?: string;
  /** Newest first unless asked otherwise. */
  sort?: AuditSort;
};

export interface AuditRepo {
  insert(entry: Omit<AuditEntry, "id">): Promise<void>;
  list(q: AuditQuery): Promise<{ rows: AuditEntry[]; total: number }>;
}

/** Who did what to which record, when and from where. Details never hold secrets. */
export class Audit {
  constructor(
    private readonly repo: AuditRepo,
    private readonly now: () => Date = () => new Date(),
  ) {}

  record(
    actor: Principal | { userId: null; username: string | null; via: string; ip: string },
    action: string,
    target: { type: string; id?: number | string | null },
    details?: Record<string, unknown>,
  ): Promise<void> {
    // A change made to test data says so: the trail reads the same for both environments.
    if ("environment" in actor && actor.environment === "test")
      details = { ...details, environment: "test" };
    return this.repo.insert({
      actor_id: actor.userId === null ? null : actorId(actor),
      actor_username: actor.username,
      via: "key" in actor && actor.key ? `key:${actor.key.prefix}` : actor.via,
      action,
      target_type: target.type,
      target_id: target.id == null ? null : String(target.id),
      details: details ?? null,
      ip: actor.via === "cli" ? null : actor.ip,
      created_at: this.now().toISOString(),
    });
  }

  list(q: AuditQuery) {
    return this.repo.list(q);
  }
}
