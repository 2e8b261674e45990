/**
 * Time ranges typed in the console's date-and-time fields (`<input type="datetime-local">`,
 * local time without a zone) and sent to the server as ISO-8601 UTC times.
 */

/** The UTC time a local `YYYY-MM-DDTHH:mm` stands for; null when empty or not a time. */
export function localToIso(value: string): string | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return null;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

/** A range's two ends as the server takes them, or why it cannot be sent. */
export function rangeOf(
  from: string,
  to: string,
): { from?: string; to?: string; problem: string | null } {
  const f = from ? localToIso(from) : null;
  const t = to ? localToIso(to) : null;
  if (from && !f) return { problem: "The start is not a date and time." };
  if (to && !t) return { problem: "The end is not a date and time." };
  if (f && t && f >= t) return { problem: "The end must be later than the start." };
  return { from: f ?? undefined, to: t ?? undefined, problem: null };
}
