import type { Audit } from "../audit.js";
import { generatePassword, hashPassword } from "../auth/passwords.js";
import { type Fence, fenceOf, type Principal } from "../auth/principal.js";
import { type UserRecord, usable } from "../auth/service.js";
import { conflict, invalid, notFound } from "../errors.js";
import { parseDateOnly } from "../keys/expiry.js";
import type { Environment } from "../keys/format.js";
import type { EventType, NewEvent } from "../events/catalogue.js";
import { type Page, type Paged, Problems, type Window, window } from "./common.js";

export const SUBSCRIBER_STATUSES = ["active", "suspended", "expired"] as const;
export type SubscriberStatus = (typeof SUBSCRIBER_STATUSES)[number];

export type SubscriberView = {
  id: number;
  username: string;
  full_name: string | null;
  phone: string | null;
  email: string | null;
  service_id: number;
  status: SubscriberStatus;
  expiry_date: string | null;
  owner_id: number;
  environment: Environment;
  created_at: string;
  updated_at: string;
};

export type SubscriberFilter = {
  fence: Fence;
  status?: SubscriberStatus;
  serviceId?: number;
  search?: string;
};

type Fields = Omit<SubscriberView, "id" | "created_at" | "updated_at"> & { password_hash: string };

export interface SubscriberRepo {
  list(f: SubscriberFilter, w: Window): Promise<{ rows: SubscriberView[]; total: number }>;
  /** A subscriber not deleted, inside the fence (its environment, and its owner unless null). */
  findById(id: number, fence: Fence): Promise<SubscriberView | null>;
  findByUsername(username: string, fence: Fence): Promise<SubscriberView | null>;
  /** Null when the username is taken by a live subscriber. `event` is emitted in the same transaction. */
  insert(row: Fields, now: string, event?: SubscriberEvent): Promise<SubscriberView | null>;
  /** False when the new username is taken by a subscriber of the same environment. */
  update(
    id: number,
    patch: Partial<Fields>,
    now: string,
    event?: SubscriberEvent,
  ): Promise<boolean>;
  softDelete(id: number, now: string, event?: SubscriberEvent): Promise<void>;
}

export interface ServiceExists {
  findById(id: number): Promise<unknown | null>;
}

export interface UserLookup {
  findById(id: number): Promise<UserRecord | null>;
}

export type SubscriberInput = {
  username?: string;
  password?: string;
  full_name?: string | null;
  phone?: string | null;
  email?: string | null;
  service_id?: number;
  status?: SubscriberStatus;
  expiry_date?: string | null;
  owner_id?: number;
};

export const AUTO_GENERATE = "auto-generate";

/** The event a write produces, given the subscriber as written: emitted in its transaction. */
export type SubscriberEvent = (s: SubscriberView) => NewEvent | null;

/** The event of a change to a subscriber (the view never holds its password). */
export function subscriberEvent(
  type: EventType,
  extra: Record<string, unknown> = {},
): SubscriberEvent {
  return (s) => ({
    type,
    environment: s.environment,
    ownerId: s.owner_id,
    data: { ...s, ...extra },
  });
}

/** Subscribers: every query fenced to what the principal may see; others' records are 404. */
export class Subscribers {
  constructor(
    private readonly repo: SubscriberRepo,
    private readonly services: ServiceExists,
    private readonly users: UserLookup,
    private readonly audit: Audit,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(
    p: Principal,
    f: Omit<SubscriberFilter, "fence">,
    page: Page,
  ): Promise<Paged<SubscriberView>> {
    const { rows, total } = await this.repo.list({ ...f, fence: fenceOf(p) }, window(page));
    return { rows, meta: { page: page.page, per_page: page.perPage, total } };
  }

  async get(p: Principal, id: number): Promise<SubscriberView> {
    const s = await this.repo.findById(id, fenceOf(p));
    if (!s) throw notFound(`subscriber ${id}`);
    return s;
  }

  async getByUsername(p: Principal, username: string): Promise<SubscriberView> {
    const s = await this.repo.findByUsername(username, fenceOf(p));
    if (!s) throw notFound(`subscriber "${username.slice(0, 64)}"`);
    return s;
  }

  async create(
    p: Principal,
    input: SubscriberInput & { username: string; password: string; service_id: number },
  ): Promise<{ data: SubscriberView; password?: string }> {
    const problems = new Problems();
    const ownerId = await this.ownerFor(p, input.owner_id, problems);
    await this.checkReferences(input, problems);
    problems.throwIfAny();
    const generated = input.password === AUTO_GENERATE ? generatePassword() : undefined;
    const row = await this.repo.insert(
      {
        username: input.username,
        password_hash: await hashPassword(generated ?? input.password),
        full_name: input.full_name ?? null,
        phone: input.phone ?? null,
        email: input.email ?? null,
        service_id: input.service_id,
        status: input.status ?? "active",
        expiry_date: input.expiry_date ?? null,
        owner_id: ownerId,
        environment: fenceOf(p).environment,
      },
      this.now().toISOString(),
      subscriberEvent("subscriber.created"),
    );
    if (!row) throw conflict(`subscriber username "${input.username}" is already taken`);
    await this.audit.record(
      p,
      "subscriber.create",
      { type: "subscriber", id: row.id },
      { username: row.username },
    );
    return generated ? { data: row, password: generated } : { data: row };
  }

  async update(
    p: Principal,
    id: number,
    input: SubscriberInput,
  ): Promise<{ data: SubscriberView; password?: string }> {
    await this.get(p, id);
    const problems = new Problems();
    const patch: Partial<Fields> = {};
    if (input.owner_id !== undefined)
      patch.owner_id = await this.ownerFor(p, input.owner_id, problems);
    await this.checkReferences(input, problems);
    problems.throwIfAny();
    const generated = input.password === AUTO_GENERATE ? generatePassword() : undefined;
    if (input.password !== undefined)
      patch.password_hash = await hashPassword(generated ?? input.password);
    for (const k of [
      "username",
      "full_name",
      "phone",
      "email",
      "service_id",
      "status",
      "expiry_date",
    ] as const) {
      if (input[k] !== undefined) (patch as Record<string, unknown>)[k] = input[k];
    }
    const changed = Object.keys(input).filter((k) => k !== "password");
    if (input.password !== undefined) changed.push("password");
    const event = subscriberEvent("subscriber.updated", { changed });
    if (!(await this.repo.update(id, patch, this.now().toISOString(), event))) {
      throw conflict(`subscriber username "${input.username}" is already taken`);
    }
    await this.audit.record(p, "subscriber.update", { type: "subscriber", id }, { changed });
    const data = await this.get(p, id);
    return generated ? { data, password: generated } : { data };
  }

  async setStatus(
    p: Principal,
    id: number,
    status: "active" | "suspended",
  ): Promise<SubscriberView> {
    await this.get(p, id);
    await this.repo.update(
      id,
      { status },
      this.now().toISOString(),
      subscriberEvent(status === "active" ? "subscriber.activated" : "subscriber.suspended"),
    );
    await this.audit.record(p, status === "active" ? "subscriber.activate" : "subscriber.suspend", {
      type: "subscriber",
      id,
    });
    return this.get(p, id);
  }

  async remove(p: Principal, id: number): Promise<void> {
    const s = await this.get(p, id);
    await this.repo.softDelete(id, this.now().toISOString(), subscriberEvent("subscriber.deleted"));
    await this.audit.record(
      p,
      "subscriber.delete",
      { type: "subscriber", id },
      { username: s.username },
    );
  }

  private async ownerFor(
    p: Principal,
    ownerId: number | undefined,
    problems: Problems,
  ): Promise<number> {
    if (ownerId === undefined || ownerId === p.userId) return p.userId;
    if (p.role !== "admin") {
      problems.add(
        "owner_id",
        "can only be set by an admin; leave it out to own the subscriber yourself",
      );
      return p.userId;
    }
    if (!usable(await this.users.findById(ownerId)))
      problems.add("owner_id", `no active user ${ownerId}`);
    return ownerId;
  }

  private async checkReferences(input: SubscriberInput, problems: Problems): Promise<void> {
    if (input.service_id !== undefined && !(await this.services.findById(input.service_id))) {
      problems.add("service_id", `no service ${input.service_id}; list them at GET /services`);
    }
    if (input.expiry_date != null && !parseDateOnly(input.expiry_date)) {
      problems.add("expiry_date", "must be a real date as YYYY-MM-DD");
    }
  }
}

export function assertStatus(value: string): SubscriberStatus {
  if ((SUBSCRIBER_STATUSES as readonly string[]).includes(value)) return value as SubscriberStatus;
  throw invalid("status", `must be one of ${SUBSCRIBER_STATUSES.join(", ")}`);
}
