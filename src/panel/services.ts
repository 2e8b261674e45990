import type { Audit } from "../audit.js";
import type { Principal } from "../auth/principal.js";
import { requireAdmin } from "../auth/service.js";
import { conflict, notFound } from "../errors.js";
import { CURRENCY, DEFAULT_CURRENCY, fromMinorUnits, Problems, toMinorUnits } from "./common.js";

export type ServiceRow = {
  id: number;
  name: string;
  download_kbps: number;
  upload_kbps: number;
  price_minor: number;
  currency: string;
  duration_days: number;
  is_active: boolean;
  created_at: string;
  updated_at: string;
};

export type ServiceView = Omit<ServiceRow, "price_minor"> & { price: number };

export type ServiceInput = {
  name?: string;
  download_kbps?: number;
  upload_kbps?: number;
  price?: number | string;
  currency?: string;
  duration_days?: number;
  is_active?: boolean;
};

type ServiceFields = Omit<ServiceRow, "id" | "created_at" | "updated_at">;

export interface ServiceRepo {
  list(): Promise<ServiceRow[]>;
  findById(id: number): Promise<ServiceRow | null>;
  insert(row: ServiceFields, now: string): Promise<ServiceRow>;
  update(id: number, patch: Partial<ServiceFields>, now: string): Promise<void>;
  /** Deletes when no subscriber (live or deleted) uses it; otherwise returns how many do. */
  deleteIfUnused(id: number): Promise<{ deleted: boolean; inUse: number }>;
}

export function serviceView(s: ServiceRow): ServiceView {
  const { price_minor, ...rest } = s;
  return { ...rest, price: fromMinorUnits(price_minor) };
}

/** The service catalogue: everyone reads it, admins change it. */
export class Services {
  constructor(
    private readonly repo: ServiceRepo,
    private readonly audit: Audit,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(_p: Principal): Promise<ServiceView[]> {
    return (await this.repo.list()).map(serviceView);
  }

  async get(_p: Principal, id: number): Promise<ServiceView> {
    const s = await this.repo.findById(id);
    if (!s) throw notFound(`service ${id}`);
    return serviceView(s);
  }

  async create(p: Principal, input: ServiceInput & { name: string }): Promise<ServiceView> {
    requireAdmin(p, "create services");
    const fields = this.check(input);
    const row = await this.repo.insert(
      {
        name: fields.name ?? input.name,
        download_kbps: fields.download_kbps ?? 0,
        upload_kbps: fields.upload_kbps ?? 0,
        price_minor: fields.price_minor ?? 0,
        currency: fields.currency ?? DEFAULT_CURRENCY,
        duration_days: fields.duration_days ?? 30,
        is_active: fields.is_active ?? true,
      },
      this.now().toISOString(),
    );
    await this.audit.record(
      p,
      "service.create",
      { type: "service", id: row.id },
      { name: row.name },
    );
    return serviceView(row);
  }

  async update(p: Principal, id: number, input: ServiceInput): Promise<ServiceView> {
    requireAdmin(p, "change services");
    await this.get(p, id);
    await this.repo.update(id, this.check(input), this.now().toISOString());
    await this.audit.record(
      p,
      "service.update",
      { type: "service", id },
      { changed: Object.keys(input) },
    );
    return this.get(p, id);
  }

  async remove(p: Principal, id: number): Promise<void> {
    requireAdmin(p, "delete services");
    await this.get(p, id);
    const { deleted, inUse } = await this.repo.deleteIfUnused(id);
    if (!deleted)
      throw conflict(
        `service ${id} is used by ${inUse} subscriber(s); move them or set is_active=false`,
      );
    await this.audit.record(p, "service.delete", { type: "service", id });
  }

  private check(input: ServiceInput): Partial<ServiceFields> {
    const problems = new Problems();
    const out: Partial<ServiceFields> = {};
    if (input.name !== undefined) {
      const name = input.name.trim();
      if (name.length === 0) problems.add("name", "must not be blank");
      out.name = name;
    }
    if (input.price !== undefined) {
      const minor = toMinorUnits(input.price);
      if (minor === null)
        problems.add("price", "must be a decimal of at least 0 with at most 2 places, e.g. 19.99");
      else out.price_minor = minor;
    }
    if (input.currency !== undefined) {
      if (!CURRENCY.test(input.currency))
        problems.add("currency", "must be a 3-letter ISO 4217 code such as USD");
      out.currency = input.currency;
    }
    for (const k of ["download_kbps", "upload_kbps", "duration_days", "is_active"] as const) {
      if (input[k] !== undefined) (out as Record<string, unknown>)[k] = input[k];
    }
    problems.throwIfAny();
    return out;
  }
}
