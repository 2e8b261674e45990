import type { Audit } from "../audit.js";
import type { Principal } from "../auth/principal.js";
import { requireAdmin } from "../auth/service.js";
import { invalid, notFound } from "../errors.js";
import { parseAllowList } from "../keys/ip.js";

export type NasView = {
  id: number;
  name: string;
  ip_address: string;
  type: string;
  description: string | null;
  created_at: string;
  updated_at: string;
};

export type NasInput = {
  name?: string;
  ip_address?: string;
  type?: string;
  description?: string | null;
  secret?: string;
};

type Fields = Omit<NasView, "id" | "created_at" | "updated_at"> & { secret: string };

export interface NasRepo {
  /** Rows without the shared secret: it is write-only. */
  list(): Promise<NasView[]>;
  findById(id: number): Promise<NasView | null>;
  insert(row: Fields, now: string): Promise<NasView>;
  update(id: number, patch: Partial<Fields>, now: string): Promise<void>;
  delete(id: number): Promise<void>;
}

/** NAS devices: admins only, on both surfaces. The shared secret is never returned. */
export class NasDevices {
  constructor(
    private readonly repo: NasRepo,
    private readonly audit: Audit,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(p: Principal): Promise<NasView[]> {
    requireAdmin(p, "see NAS devices");
    return this.repo.list();
  }

  async get(p: Principal, id: number): Promise<NasView> {
    requireAdmin(p, "see NAS devices");
    const n = await this.repo.findById(id);
    if (!n) throw notFound(`NAS ${id}`);
    return n;
  }

  async create(
    p: Principal,
    input: NasInput & { name: string; ip_address: string; secret: string },
  ): Promise<NasView> {
    requireAdmin(p, "add NAS devices");
    const row = await this.repo.insert(
      {
        name: input.name,
        ip_address: checkIp(input.ip_address),
        type: input.type ?? "other",
        description: input.description ?? null,
        secret: input.secret,
      },
      this.now().toISOString(),
    );
    await this.audit.record(p, "nas.create", { type: "nas", id: row.id }, { name: row.name });
    return row;
  }

  async update(p: Principal, id: number, input: NasInput): Promise<NasView> {
    await this.get(p, id);
    const patch: Partial<Fields> = { ...input };
    if (input.ip_address !== undefined) patch.ip_address = checkIp(input.ip_address);
    await this.repo.update(id, patch, this.now().toISOString());
    const changed = Object.keys(input);
    await this.audit.record(p, "nas.update", { type: "nas", id }, { changed });
    return this.get(p, id);
  }

  async remove(p: Principal, id: number): Promise<void> {
    await this.get(p, id);
    await this.repo.delete(id);
    await this.audit.record(p, "nas.delete", { type: "nas", id });
  }
}

function checkIp(value: string): string {
  const parsed = parseAllowList([value]);
  const entry = parsed.ok ? parsed.list.entries[0] : undefined;
  if (!entry || entry.includes("/"))
    throw invalid("ip_address", "must be a single IPv4 or IPv6 address");
  return entry;
}
