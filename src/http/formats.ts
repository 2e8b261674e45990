import type { Ajv } from "ajv";
import { parseDateOnly, parseMoment } from "../keys/expiry.js";

/**
 * Formats that check a value means something, not only that it has the right shape:
 * `date` is a calendar date that exists (1970–9999), `date-time` an ISO-8601 moment that
 * exists, `date-or-time` either. A pattern alone passes `0000-00-00` and `2023-13-01` through to date arithmetic.
 */
export function addFormats(ajv: Ajv): Ajv {
  ajv.addFormat("date", {
    type: "string",
    validate: (s: string) => s.length === 10 && parseDateOnly(s) !== null,
  });
  ajv.addFormat("date-time", {
    type: "string",
    validate: (s: string) => s.length <= 40 && s.includes("T") && parseMoment(s) !== null,
  });
  ajv.addFormat("date-or-time", {
    type: "string",
    validate: (s: string) => s.length <= 40 && parseMoment(s) !== null,
  });
  return ajv;
}
