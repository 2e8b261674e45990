import { FormFooter } from "./ui";
import {
  Alert,
  Code,
  Radio,
  Select,
  SimpleGrid,
  Stack,
  Text,
  Textarea,
  TextInput,
} from "@mantine/core";
import { useCallback } from "react";
import { messageOf } from "../lib/api";
import type { Environment } from "../lib/environment";
import { useForm } from "../lib/form";
import {
  FULL,
  type Levels,
  levelsOf,
  limitsFor,
  samePermissions,
  toPermissions,
} from "../lib/permissions";
import type { ApiKey, KeyPresets, KeySigning, UserRow } from "../lib/types";
import { useResource } from "../lib/useResource";
import { type KeyFormValues, parseIpLines, todayUtc, validateKeyForm } from "../lib/validation";
import { SIGNING_CHOICES } from "../lib/format";
import { PermissionPicker } from "./PermissionPicker";

export type KeyBody = {
  name?: string;
  description?: string | null;
  /** Normalised (lib/permissions.ts); the server derives `scopes` from them. */
  permissions?: string[];
  /** Only when minting: a key's environment is chosen once. */
  environment?: Environment;
  allowed_ips?: string[] | null;
  rate_limit_per_minute?: number | null;
  expires_at?: string | null;
  owner_id?: number;
  /** Sent on create only when not off (the server's default); on edit, when changed. */
  signing?: KeySigning;
  /** A cap of admitted calls per day or month; null removes it. */
  quota?: { limit: number; period: "day" | "month"; refill_day?: number | null } | null;
};

/** The quota the form's fields describe, or null for none. */
function quotaOf(v: KeyFormValues): KeyBody["quota"] {
  if (v.quota_limit.trim() === "") return null;
  const day = v.quota_period === "month" && v.quota_refill_day.trim() !== "";
  return {
    limit: Number(v.quota_limit),
    period: v.quota_period,
    ...(day ? { refill_day: Number(v.quota_refill_day) } : {}),
  };
}

/** What saving a change of request signing does to the key's secret and its callers. */
export function signingChange(from: KeySigning, to: KeySigning): string | null {
  if (from === to) return null;
  if (from === "off")
    return to === "required"
      ? "Saving mints a signing secret, shown once. From the next request every unsigned call is refused with SIGNATURE_REQUIRED: give the caller the secret first, or choose Optional while it switches."
      : "Saving mints a signing secret, shown once.";
  if (to === "off")
    return "Saving deletes the signing secret for good; turning signing on again later mints a new one.";
  return to === "required"
    ? "The signing secret stays the same. From the next request every unsigned call is refused with SIGNATURE_REQUIRED."
    : "The signing secret stays the same; unsigned calls are accepted again.";
}

/**
 * Why the quota a form now describes loosens the key's, which only an admin may do (the
 * server answers such a change with 403): removed, another period or refill day, or a higher
 * limit. Null when it tightens or keeps it.
 */
export function quotaLoosening(
  was: NonNullable<KeyBody["quota"]>,
  next: KeyBody["quota"],
): string | null {
  const per = was.period === "month" ? "a month" : "a day";
  const lower = `You may lower it (at most ${was.limit.toLocaleString("en-US")} ${per}); ask an admin for more.`;
  if (next === null || next === undefined)
    return `Only an admin can remove this key's quota. ${lower}`;
  const day = (q: NonNullable<KeyBody["quota"]>) =>
    q.period === "month" ? (q.refill_day ?? 1) : null;
  if (next.period !== was.period || day(next) !== day(was))
    return `Only an admin can change the quota's period or refill day. ${lower}`;
  if (next.limit > was.limit) return `Only an admin can raise this key's quota. ${lower}`;
  return null;
}

/** A new key may read everything, as a key minted without scopes always could. */
const NEW_KEY_PERMISSIONS = ["*:read"];

function valuesOf(key: ApiKey | undefined, ownerId: number | undefined): KeyFormValues {
  return {
    name: key?.name ?? "",
    description: key?.description ?? "",
    permissions: levelsOf(key?.permissions ?? NEW_KEY_PERMISSIONS),
    allowed_ips: (key?.allowed_ips ?? []).join("\n"),
    rate_limit_per_minute: key?.rate_limit_per_minute ? String(key.rate_limit_per_minute) : "",
    expires_at: key?.expires_at ? key.expires_at.slice(0, 10) : "",
    owner_id: ownerId ? String(ownerId) : key ? String(key.owner_id) : "",
    signing: key?.signing ?? "off",
    quota_limit: key?.quota ? String(key.quota.limit) : "",
    quota_period: key?.quota?.period ?? "day",
    quota_refill_day: key?.quota?.refill_day ? String(key.quota.refill_day) : "",
  };
}

/**
 * The body to send: everything on create (in `environment`); on edit, only what changed.
 * `limits` are what the owner's role allows: what lies beyond is left out of `permissions`.
 */
export function keyBody(
  v: KeyFormValues,
  initial: KeyFormValues,
  editing: boolean,
  { environment = "live", limits = FULL }: { environment?: Environment; limits?: Levels } = {},
): KeyBody {
  const ips = parseIpLines(v.allowed_ips).entries;
  const permissions = toPermissions(v.permissions, limits);
  const full: KeyBody = {
    name: v.name.trim(),
    description: v.description.trim() === "" ? null : v.description.trim(),
    allowed_ips: ips.length > 0 ? ips : null,
    rate_limit_per_minute:
      v.rate_limit_per_minute.trim() === "" ? null : Number(v.rate_limit_per_minute),
    expires_at: v.expires_at.trim() === "" ? null : v.expires_at.trim(),
  };
  if (!editing) {
    const body: KeyBody = { permissions, environment };
    if (full.name) body.name = full.name;
    if (full.description) body.description = full.description;
    if (full.allowed_ips) body.allowed_ips = full.allowed_ips;
    if (full.rate_limit_per_minute) body.rate_limit_per_minute = full.rate_limit_per_minute;
    if (full.expires_at) body.expires_at = full.expires_at;
    if (v.owner_id) body.owner_id = Number(v.owner_id);
    if (v.signing !== "off") body.signing = v.signing;
    const quota = quotaOf(v);
    if (quota) body.quota = quota;
    return body;
  }
  const body: KeyBody = {};
  const changed = (k: Exclude<keyof KeyFormValues, "permissions">) => v[k] !== initial[k];
  if (changed("signing")) body.signing = v.signing;
  if (changed("name")) body.name = full.name;
  if (changed("description")) body.description = full.description;
  if (!samePermissions(permissions, toPermissions(initial.permissions, limits)))
    body.permissions = permissions;
  if (changed("allowed_ips")) body.allowed_ips = full.allowed_ips;
  if (changed("rate_limit_per_minute")) body.rate_limit_per_minute = full.rate_limit_per_minute;
  if (changed("expires_at")) body.expires_at = full.expires_at;
  if (changed("quota_limit") || changed("quota_period") || changed("quota_refill_day"))
    body.quota = quotaOf(v);
  return body;
}

/** What the mint form says about the environment the key is minted in. */
export const MINT_ENVIRONMENT: Record<Environment, { title: string; body: string }> = {
  test: {
    title: "This key will be a test key (pk_test_…)",
    body: "It sees and changes only test data. To mint a live key, turn off Test data in the header first.",
  },
  live: {
    title: "This key will be a live key (pk_live_…)",
    body: "It works on live data. To mint a test key, turn on Test data in the header first.",
  },
};

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
  environment,
  presets,
  onSubmit,
  onCancel,
  now,
}: {
  existing?: ApiKey;
  isAdmin: boolean;
  selfId: number;
  users?: UserRow[];
  /** Where a new key is minted: the Test data switch's environment. Ignored on edit. */
  environment: Environment;
  /** `GET /api/api-keys/presets`, when the caller has it; otherwise the form asks. */
  presets?: KeyPresets;
  /** The server's rate limit for a key without its own (from `/api/auth/me`), once known. */
  defaultRateLimit?: number | null;
  onSubmit: (body: KeyBody) => Promise<void>;
  onCancel?: () => void;
  now?: Date;
}) {
  const editing = existing !== undefined;
  const initial = valuesOf(existing, editing ? undefined : selfId);
  const asked = useResource<KeyPresets>(presets ? null : "/api/api-keys/presets");
  const offered = presets ?? asked.data;
  /** The owner's role, once known: what the key may be granted depends on it. */
  const roleOf = useCallback(
    (ownerId: string): string | undefined => {
      const id = Number(ownerId);
      if (id === selfId) return isAdmin ? "admin" : "reseller";
      return users?.find((u) => u.id === id)?.role;
    },
    [users, selfId, isAdmin],
  );
  const roleLimits = offered?.role_limits;
  const limitsOf = useCallback(
    (ownerId: string) => limitsFor(roleOf(ownerId), roleLimits),
    [roleOf, roleLimits],
  );
  const validate = useCallback(
    (v: KeyFormValues) => {
      const problems = validateKeyForm(v, {
        now: now ?? new Date(),
        editing,
        limits: limitsOf(v.owner_id),
      });
      // An unchanged expiry that has since passed is not the user's mistake on this edit.
      if (editing && v.expires_at === initial.expires_at) delete problems.expires_at;
      // A quota binds its owner: only an admin loosens one.
      const was = existing?.quota;
      if (editing && !isAdmin && was && problems.quota_limit === undefined) {
        const loosened = quotaLoosening(was, quotaOf(v));
        if (loosened !== null) problems.quota_limit = loosened;
      }
      return problems;
    },
    [now, editing, initial.expires_at, limitsOf, existing?.quota, isAdmin],
  );
  const form = useForm<KeyFormValues>({
    initial,
    validate,
    live: ["allowed_ips", "expires_at", "rate_limit_per_minute", "quota_limit", "quota_refill_day"],
    idPrefix: editing ? "key-edit" : "key-new",
  });
  const { values, set, field, text } = form;
  const ownerRole = roleOf(values.owner_id);
  const env = existing?.environment ?? environment;
  const signingNote = editing
    ? signingChange(initial.signing, values.signing)
    : values.signing !== "off"
      ? "A signing secret is minted with the key and shown once, beside it."
      : null;
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
        void form.submit((v) =>
          onSubmit(
            keyBody(v, initial, editing, {
              environment,
              limits: limitsOf(v.owner_id),
            }),
          ),
        );
      }}
      aria-label={editing ? "Edit API key" : "New API key"}
    >
      <Stack gap="md">
        {editing ? (
          <Text size="sm" data-testid="key-environment">
            A {env} key (<Code>pk_{env}_…</Code>): its environment was chosen when it was minted and
            cannot be changed.
          </Text>
        ) : (
          <Alert
            role="note"
            color={env === "test" ? "orange" : "gray"}
            title={MINT_ENVIRONMENT[env].title}
            data-testid="key-environment"
          >
            {MINT_ENVIRONMENT[env].body}
          </Alert>
        )}
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
        <PermissionPicker
          id={`${editing ? "key-edit" : "key-new"}-permissions`}
          value={values.permissions}
          onChange={(next) => set("permissions", next)}
          ownerRole={ownerRole}
          limits={limitsOf(values.owner_id)}
          presets={offered?.presets}
          presetsError={asked.error ? messageOf(asked.error) : null}
          error={field("permissions").error}
        />
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
        <SimpleGrid cols={{ base: 1, sm: 3 }}>
          <TextInput
            label="Quota"
            description="Most admitted calls per period; past it calls are refused QUOTA_EXCEEDED until it refills. Empty: no quota."
            inputMode="numeric"
            placeholder="none"
            {...text("quota_limit")}
          />
          <Select
            label="Quota period"
            description="Periods are UTC."
            data={[
              { value: "day", label: "Per day (refills 00:00 UTC)" },
              { value: "month", label: "Per month" },
            ]}
            value={values.quota_period}
            onChange={(v) =>
              set("quota_period", (v === "month" ? "month" : "day") as "day" | "month")
            }
            allowDeselect={false}
            disabled={values.quota_limit.trim() === ""}
          />
          <TextInput
            label="Refill day"
            description="Monthly quotas: 1–31 (past a month's end, its last day). Empty: the 1st."
            inputMode="numeric"
            placeholder="1"
            disabled={values.quota_period !== "month" || values.quota_limit.trim() === ""}
            {...text("quota_refill_day")}
          />
        </SimpleGrid>
        <Radio.Group
          id={`${editing ? "key-edit" : "key-new"}-signing`}
          label="Request signing"
          description="A signed call proves it comes from whoever holds the key's signing secret, and that nothing in it was changed or replayed on the way."
          value={values.signing}
          onChange={(v) => set("signing", v as KeySigning)}
          error={field("signing").error}
        >
          <Stack gap={6} mt="xs">
            {SIGNING_CHOICES.map((c) => (
              <Radio key={c.value} value={c.value} label={c.label} description={c.help} />
            ))}
          </Stack>
        </Radio.Group>
        {signingNote && (
          <Text size="sm" c="dimmed" data-testid="key-signing-note" mt={-8}>
            {signingNote}
          </Text>
        )}
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
