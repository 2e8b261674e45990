import { FormFooter } from "./ui";
import { Radio, Select, SimpleGrid, Stack, Text, Textarea, TextInput } from "@mantine/core";
import { useCallback } from "react";
import { SCOPE_HELP, SCOPE_VERBS } from "../lib/format";
import { useForm } from "../lib/form";
import type { ApiKey, UserRow } from "../lib/types";
import { type KeyFormValues, parseIpLines, todayUtc, validateKeyForm } from "../lib/validation";

export type KeyBody = {
  name?: string;
  description?: string | null;
  scopes?: string;
  allowed_ips?: string[] | null;
  rate_limit_per_minute?: number | null;
  expires_at?: string | null;
  owner_id?: number;
};

function valuesOf(key: ApiKey | undefined, ownerId: number | undefined): KeyFormValues {
  return {
    name: key?.name ?? "",
    description: key?.description ?? "",
    scopes: key?.scopes ?? "read",
    allowed_ips: (key?.allowed_ips ?? []).join("\n"),
    rate_limit_per_minute: key?.rate_limit_per_minute ? String(key.rate_limit_per_minute) : "",
    expires_at: key?.expires_at ? key.expires_at.slice(0, 10) : "",
    owner_id: ownerId ? String(ownerId) : key ? String(key.owner_id) : "",
  };
}

/** The body to send: everything on create; on edit, only what changed. */
export function keyBody(v: KeyFormValues, initial: KeyFormValues, editing: boolean): KeyBody {
  const ips = parseIpLines(v.allowed_ips).entries;
  const full: KeyBody = {
    name: v.name.trim(),
    description: v.description.trim() === "" ? null : v.description.trim(),
    scopes: v.scopes,
    allowed_ips: ips.length > 0 ? ips : null,
    rate_limit_per_minute:
      v.rate_limit_per_minute.trim() === "" ? null : Number(v.rate_limit_per_minute),
    expires_at: v.expires_at.trim() === "" ? null : v.expires_at.trim(),
  };
  if (!editing) {
    const body: KeyBody = { scopes: full.scopes };
    if (full.name) body.name = full.name;
    if (full.description) body.description = full.description;
    if (full.allowed_ips) body.allowed_ips = full.allowed_ips;
    if (full.rate_limit_per_minute) body.rate_limit_per_minute = full.rate_limit_per_minute;
    if (full.expires_at) body.expires_at = full.expires_at;
    if (v.owner_id) body.owner_id = Number(v.owner_id);
    return body;
  }
  const body: KeyBody = {};
  const changed = (k: keyof KeyFormValues) => v[k] !== initial[k];
  if (changed("name")) body.name = full.name;
  if (changed("description")) body.description = full.description;
  if (changed("scopes")) body.scopes = full.scopes;
  if (changed("allowed_ips")) body.allowed_ips = full.allowed_ips;
  if (changed("rate_limit_per_minute")) body.rate_limit_per_minute = full.rate_limit_per_minute;
  if (changed("expires_at")) body.expires_at = full.expires_at;
  return body;
}

/**
 * Mints a key, or changes one (`existing`). Every field is checked as it is filled in and
 * nothing is sent while a problem remains; the server's own refusal is shown above the
 * buttons and, per field, under the field it names.
 */
export function KeyForm({
  existing,
  isAdmin,
  selfId,
  users,
  defaultRateLimit,
  onSubmit,
  onCancel,
  now,
}: {
  existing?: ApiKey;
  isAdmin: boolean;
  selfId: number;
  users?: UserRow[];
  /** The server's rate limit for a key without its own (from `/api/auth/me`), once known. */
  defaultRateLimit?: number | null;
  onSubmit: (body: KeyBody) => Promise<void>;
  onCancel?: () => void;
  now?: Date;
}) {
  const editing = existing !== undefined;
  const initial = valuesOf(existing, editing ? undefined : selfId);
  const validate = useCallback(
    (v: KeyFormValues) => {
      const problems = validateKeyForm(v, { now: now ?? new Date(), editing });
      // An unchanged expiry that has since passed is not the user's mistake on this edit.
      if (editing && v.expires_at === initial.expires_at) delete problems.expires_at;
      return problems;
    },
    [now, editing, initial.expires_at],
  );
  const form = useForm<KeyFormValues>({
    initial,
    validate,
    live: ["allowed_ips", "expires_at", "rate_limit_per_minute"],
    idPrefix: editing ? "key-edit" : "key-new",
  });
  const { values, set, field, text } = form;
  const ownerChoices = (users ?? [])
    .filter((u) => !u.disabled)
    .map((u) => ({
      value: String(u.id),
      label: u.id === selfId ? `${u.username} (you)` : `${u.username} (${u.role})`,
    }));

  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void form.submit((v) => onSubmit(keyBody(v, initial, editing)));
      }}
      aria-label={editing ? "Edit API key" : "New API key"}
    >
      <Stack gap="md">
        <TextInput
          label="Name"
          placeholder="API Key"
          description="How you will recognise it: the system that uses it, e.g. billing or helpdesk."
          maxLength={100}
          data-autofocus
          {...text("name")}
        />
        <Textarea
          label="Description"
          description="Optional: who runs it, where it is stored."
          autosize
          minRows={1}
          maxRows={4}
          {...text("description")}
        />
        <Radio.Group
          label="Scope"
          description="What the key may do. Choose the narrowest that works."
          value={values.scopes}
          onChange={(v) => set("scopes", v as KeyFormValues["scopes"])}
          error={field("scopes").error}
          id="key-scope"
        >
          <Stack gap="xs" mt="xs">
            {(["read", "write", "delete"] as const).map((s) => (
              <Radio
                key={s}
                value={s}
                label={
                  <Text size="sm" fw={500} span>
                    {s}{" "}
                    <Text span c="dimmed" size="xs" ff="monospace">
                      ({SCOPE_VERBS[s]})
                    </Text>
                  </Text>
                }
                description={SCOPE_HELP[s]}
              />
            ))}
          </Stack>
        </Radio.Group>
        <Textarea
          label="Allowed IPs"
          description="One per line: an address (203.0.113.7, 2001:db8::1) or a CIDR range (10.0.0.0/8). Empty: any address."
          placeholder={"203.0.113.7\n10.0.0.0/8"}
          autosize
          minRows={2}
          maxRows={8}
          spellCheck={false}
          autoCapitalize="off"
          autoCorrect="off"
          styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
          {...text("allowed_ips")}
          error={
            field("allowed_ips").error ? (
              <span style={{ whiteSpace: "pre-line" }}>{field("allowed_ips").error}</span>
            ) : undefined
          }
        />
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput
            label="Rate limit"
            description={
              defaultRateLimit
                ? `Requests per minute. Empty: the server default, ${defaultRateLimit} / min.`
                : "Requests per minute. Empty: the server default."
            }
            inputMode="numeric"
            placeholder="default"
            rightSection={
              <Text size="xs" c="dimmed">
                /min
              </Text>
            }
            rightSectionWidth={44}
            {...text("rate_limit_per_minute")}
          />
          <TextInput
            type="date"
            label="Expires"
            description="Valid through the end of that day (UTC). Empty: never."
            min={todayUtc(now)}
            {...text("expires_at")}
          />
        </SimpleGrid>
        {isAdmin && !editing && (
          <Select
            label="Owner"
            description="The key acts for its owner and sees exactly what the owner sees."
            data={
              ownerChoices.length > 0 ? ownerChoices : [{ value: String(selfId), label: "you" }]
            }
            value={values.owner_id}
            onChange={(v) => set("owner_id", v ?? String(selfId))}
            allowDeselect={false}
            searchable
            {...field("owner_id")}
          />
        )}
        <FormFooter
          error={form.formError}
          errorTitle={editing ? "Not saved" : "Key not minted"}
          busy={form.busy}
          submitLabel={editing ? "Save changes" : "Mint key"}
          onCancel={onCancel}
        />
      </Stack>
    </form>
  );
}
