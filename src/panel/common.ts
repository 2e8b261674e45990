import { AppError, type FieldProblem } from "../errors.js";

export type Page = { page: number; perPage: number };
export type Paged<T> = { rows: T[]; meta: { page: number; per_page: number; total: number } };
export type Window = { limit: number; offset: number };

export function window(p: Page): Window {
  return { limit: p.perPage, offset: (p.page - 1) * p.perPage };
}

/** Collects field problems and throws them together, so a client fixes every field at once. */
export class Problems {
  private readonly list: FieldProblem[] = [];
  add(field: string, message: string): void {
    this.list.push({ field, message });
  }
  throwIfAny(): void {
    if (this.list.length === 0) return;
    throw new AppError(
      "VALIDATION_ERROR",
      this.list.map((p) => `${p.field} ${p.message}`).join("; "),
      this.list,
    );
  }
}

const MONEY = /^\d{1,12}(\.\d{1,2})?$/;

/** Decimal amount (number or string, at most 2 places) to minor units; null when malformed. */
export function toMinorUnits(value: number | string): number | null {
  const text =
    typeof value === "number" ? (Number.isFinite(value) ? String(value) : "") : value.trim();
  if (!MONEY.test(text)) return null;
  const [whole, frac = ""] = text.split(".") as [string, string?];
  return Number(whole) * 100 + Number(frac.padEnd(2, "0"));
}

export function fromMinorUnits(minor: number): number {
  return minor / 100;
}

export const CURRENCY = /^[A-Z]{3}$/;
export const DEFAULT_CURRENCY = "USD";

export function today(now: Date): string {
  return now.toISOString().slice(0, 10);
}

export function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}
