import { Select, TextInput } from "@mantine/core";
import type { LogWindow } from "../lib/callLog";
import { rangeOf } from "../lib/range";

/** The call log's order and time range as typed: local date-times, empty for open ends. */
export type LogWindowDraft = { order: "asc" | "desc"; from: string; before: string };

export const NEWEST_FIRST: LogWindowDraft = { order: "desc", from: "", before: "" };

/** What the server is asked for; a range that cannot be sent is left out, with its problem. */
export function logWindowOf(d: LogWindowDraft): { window: LogWindow; problem: string | null } {
  const r = rangeOf(d.from, d.before);
  return {
    window: r.problem ? { order: d.order } : { order: d.order, from: r.from, before: r.to },
    problem: r.problem,
  };
}

/** The call log's order (newest or oldest first) and its range [from, before). */
export function CallLogWindow({
  value,
  onChange,
}: {
  value: LogWindowDraft;
  onChange: (next: LogWindowDraft) => void;
}) {
  const { problem } = logWindowOf(value);
  return (
    <>
      <Select
        label="Order"
        size="xs"
        w={140}
        data={[
          { value: "desc", label: "Newest first" },
          { value: "asc", label: "Oldest first" },
        ]}
        value={value.order}
        onChange={(v) => onChange({ ...value, order: v === "asc" ? "asc" : "desc" })}
        allowDeselect={false}
      />
      <TextInput
        label="From"
        size="xs"
        type="datetime-local"
        w={{ base: "100%", xs: 190 }}
        value={value.from}
        onChange={(e) => onChange({ ...value, from: e.currentTarget.value })}
        error={problem && value.from ? problem : undefined}
      />
      <TextInput
        label="Before"
        size="xs"
        type="datetime-local"
        w={{ base: "100%", xs: 190 }}
        value={value.before}
        onChange={(e) => onChange({ ...value, before: e.currentTarget.value })}
        error={problem && value.before && !value.from ? problem : undefined}
      />
    </>
  );
}
