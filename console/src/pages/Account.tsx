import {
  Alert,
  Anchor,
  Badge,
  Button,
  Checkbox,
  Code,
  Group,
  Paper,
  PasswordInput,
  SimpleGrid,
  Stack,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { type FormEvent, useEffect, useState } from "react";
import { useAuth, useUser } from "../auth";
import { QrCode } from "../components/QrCode";
import { useNotify } from "../components/Toasts";
import { CopyButton, CopyField, Dialog, ErrorAlert, Loading, PageHeader } from "../components/ui";
import { api, fieldErrors, messageOf } from "../lib/api";
import { formatDateTime } from "../lib/format";
import type { TwoFactorEnrolment, TwoFactorStatus } from "../lib/types";
import { codeDigits } from "../lib/twoFactor";
import { useResource } from "../lib/useResource";

/** Recovery codes, shown once: copy them all, say they are stored, then Done. */
export function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  const [stored, setStored] = useState(false);
  return (
    <Stack>
      <Alert color="orange" title="Store these recovery codes now" role="alert">
        They will not be shown again. Each signs you in once if you lose the authenticator app; keep
        them apart from your password (a password manager, or printed).
      </Alert>
      <SimpleGrid cols={2} spacing="xs" data-testid="recovery-codes">
        {codes.map((c) => (
          <Code key={c} fz="sm" ta="center">
            {c}
          </Code>
        ))}
      </SimpleGrid>
      <Group>
        <CopyButton value={codes.join("\n")} label="Copy all codes" />
      </Group>
      <Checkbox
        label="I have stored the recovery codes somewhere safe"
        checked={stored}
        onChange={(e) => setStored(e.currentTarget.checked)}
      />
      <Group justify="flex-end">
        <Button onClick={onDone} disabled={!stored}>
          Done
        </Button>
      </Group>
    </Stack>
  );
}

/** The base32 secret in groups of four, easier to type into an app by hand. */
const grouped = (secret: string) => secret.replace(/(.{4})(?=.)/g, "$1 ");

/** Turning two-factor on: the password, then the QR code and a first code, then the recovery codes. */
function EnrolDialog({
  opened,
  onClose,
  onEnabled,
}: {
  opened: boolean;
  onClose: () => void;
  onEnabled: () => void;
}) {
  const [step, setStep] = useState<"password" | "scan" | "codes">("password");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [enrolment, setEnrolment] = useState<TwoFactorEnrolment | null>(null);
  const [codes, setCodes] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [fieldError, setFieldError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!opened) return;
    setStep("password");
    setPassword("");
    setCode("");
    setEnrolment(null);
    setCodes([]);
    setError(null);
    setFieldError(undefined);
  }, [opened]);

  const run = async (send: () => Promise<void>, field: string) => {
    setBusy(true);
    setError(null);
    setFieldError(undefined);
    try {
      await send();
    } catch (err) {
      const problems = fieldErrors(err);
      if (problems[field]) setFieldError(problems[field]);
      else setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const start = (e: FormEvent) => {
    e.preventDefault();
    if (password === "") return setFieldError("Enter your password.");
    void run(async () => {
      const res = await api.post<TwoFactorEnrolment>("/api/auth/2fa/enrol", { password });
      setEnrolment(res.data);
      setPassword("");
      setStep("scan");
    }, "password");
  };

  const confirm = (e: FormEvent) => {
    e.preventDefault();
    const digits = codeDigits(code);
    if (digits === null) return setFieldError("Enter the 6 digits the app shows.");
    void run(async () => {
      const res = await api.post<{ recovery_codes: string[] }>("/api/auth/2fa/confirm", {
        code: digits,
      });
      setEnrolment(null);
      setCodes(res.data.recovery_codes);
      setStep("codes");
      onEnabled();
    }, "code");
  };

  return (
    <Dialog
      opened={opened}
      onClose={onClose}
      title={step === "codes" ? "Two-factor sign-in is on" : "Turn on two-factor sign-in"}
      size="md"
      dismissable={step !== "codes"}
    >
      {step === "password" && (
        <form onSubmit={start} noValidate aria-label="Confirm your password">
          <Stack>
            <Text size="sm">
              Sign-in will ask for a 6-digit code from an authenticator app on your phone (Google
              Authenticator, Microsoft Authenticator, 1Password, Authy, …) after your password.
              First, confirm it is you.
            </Text>
            <PasswordInput
              id="enrol-password"
              label="Your password"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
              error={fieldError}
              required
              data-autofocus
            />
            {error && (
              <Alert color="red" title="Not started" role="alert">
                {error}
              </Alert>
            )}
            <Group justify="flex-end">
              <Button variant="default" onClick={onClose}>
                Cancel
              </Button>
              <Button type="submit" loading={busy}>
                Continue
              </Button>
            </Group>
          </Stack>
        </form>
      )}
      {step === "scan" && enrolment && (
        <form onSubmit={confirm} noValidate aria-label="Confirm the authenticator app">
          <Stack>
            <Text size="sm">
              1. In the authenticator app, add an account and scan this QR code.
            </Text>
            <Group justify="center">
              <QrCode
                value={enrolment.otpauth_url}
                label={`QR code for ${enrolment.issuer} (${enrolment.account}) in an authenticator app`}
              />
            </Group>
            <CopyField
              label="Cannot scan? Type this key instead"
              description={`Time-based, ${enrolment.digits} digits, every ${enrolment.period} s; account ${enrolment.account}, issuer ${enrolment.issuer}.`}
              value={grouped(enrolment.secret)}
              testId="two-factor-secret"
            />
            <TextInput
              id="enrol-code"
              label="2. Enter the code the app shows"
              inputMode="numeric"
              autoComplete="one-time-code"
              placeholder="123456"
              maxLength={8}
              value={code}
              onChange={(e) => setCode(e.currentTarget.value)}
              error={fieldError}
              required
            />
            {error && (
              <Alert color="red" title="Not turned on" role="alert">
                {error}
              </Alert>
            )}
            <Group justify="flex-end">
              <Button variant="default" onClick={onClose}>
                Cancel
              </Button>
              <Button type="submit" loading={busy}>
                Turn on
              </Button>
            </Group>
          </Stack>
        </form>
      )}
      {step === "codes" && <RecoveryCodes codes={codes} onDone={onClose} />}
    </Dialog>
  );
}

/** The password or a current code, then `action` (turn off, or new recovery codes). */
function ConfirmIdentityDialog({
  opened,
  onClose,
  title,
  intro,
  submitLabel,
  color,
  send,
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  intro: string;
  submitLabel: string;
  color?: string;
  /** Sends the proof; answers recovery codes to show, or null to close. */
  send: (proof: { password: string } | { code: string }) => Promise<string[] | null>;
}) {
  const [useCode, setUseCode] = useState(false);
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [fieldError, setFieldError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [codes, setCodes] = useState<string[] | null>(null);

  useEffect(() => {
    if (!opened) return;
    setUseCode(false);
    setValue("");
    setError(null);
    setFieldError(undefined);
    setCodes(null);
  }, [opened]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setFieldError(undefined);
    const digits = codeDigits(value);
    if (useCode && digits === null) return setFieldError("Enter the 6 digits the app shows.");
    if (!useCode && value === "") return setFieldError("Enter your password.");
    setBusy(true);
    try {
      const next = await send(useCode ? { code: digits as string } : { password: value });
      if (next) setCodes(next);
      else onClose();
    } catch (err) {
      const problems = fieldErrors(err);
      const mine = problems[useCode ? "code" : "password"];
      if (mine) setFieldError(mine);
      else setError(messageOf(err));
      setValue("");
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog
      opened={opened}
      onClose={onClose}
      title={codes ? "New recovery codes" : title}
      size="md"
      dismissable={codes === null}
    >
      {codes ? (
        <RecoveryCodes codes={codes} onDone={onClose} />
      ) : (
        <form onSubmit={submit} noValidate aria-label={title}>
          <Stack>
            <Text size="sm">{intro}</Text>
            {useCode ? (
              <TextInput
                key="code"
                id="confirm-code"
                label="Code from the authenticator app"
                inputMode="numeric"
                autoComplete="one-time-code"
                maxLength={8}
                value={value}
                onChange={(e) => setValue(e.currentTarget.value)}
                error={fieldError}
                required
                data-autofocus
              />
            ) : (
              <PasswordInput
                key="password"
                id="confirm-password"
                label="Your password"
                autoComplete="current-password"
                value={value}
                onChange={(e) => setValue(e.currentTarget.value)}
                error={fieldError}
                required
                data-autofocus
              />
            )}
            <Anchor
              component="button"
              type="button"
              size="sm"
              ta="left"
              onClick={() => {
                setUseCode(!useCode);
                setValue("");
                setFieldError(undefined);
              }}
            >
              {useCode ? "Use your password instead" : "Use a code from the app instead"}
            </Anchor>
            {error && (
              <Alert color="red" title="Not done" role="alert">
                {error}
              </Alert>
            )}
            <Group justify="flex-end">
              <Button variant="default" onClick={onClose}>
                Cancel
              </Button>
              <Button type="submit" color={color} loading={busy}>
                {submitLabel}
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Dialog>
  );
}

/** "Two-factor sign-in": whether it is on, and turning it on or off. */
export function TwoFactorSection() {
  const status = useResource<TwoFactorStatus>("/api/auth/2fa");
  const { reloadProfile } = useAuth();
  const notify = useNotify();
  const [dialog, setDialog] = useState<null | "enrol" | "disable" | "codes">(null);
  const s = status.data;
  const changed = () => {
    status.reload();
    reloadProfile();
  };

  return (
    <Paper withBorder p="lg" radius="md" component="section" aria-labelledby="two-factor-title">
      <Stack gap="sm">
        <Group justify="space-between" align="center">
          <Title order={2} size="h4" id="two-factor-title">
            Two-factor sign-in
          </Title>
          {s && (
            <Badge variant="light" color={s.enabled ? "teal" : "gray"}>
              {s.enabled ? "On" : "Off"}
            </Badge>
          )}
        </Group>
        <ErrorAlert error={status.error} onRetry={status.reload} />
        {status.loading && !s && <Loading />}
        {s && s.required && !s.enabled && (
          <Alert color="orange" title="Required for your account" role="status">
            This Keygate asks you to turn on two-factor sign-in before you mint, change, roll or
            revoke API keys.
          </Alert>
        )}
        {s && !s.enabled && (
          <>
            <Text size="sm">
              Besides your password, sign-in asks for a 6-digit code from an authenticator app on
              your phone, so a leaked password alone does not let anyone in.
            </Text>
            <Group>
              <Button onClick={() => setDialog("enrol")}>Turn on two-factor sign-in</Button>
            </Group>
          </>
        )}
        {s && s.enabled && (
          <>
            <Text size="sm">
              On since {s.enabled_at ? formatDateTime(s.enabled_at) : "—"}. Sign-in asks for a code
              from your authenticator app.{" "}
              <Text span size="sm" c={s.recovery_codes_left <= 2 ? "orange" : undefined}>
                {s.recovery_codes_left} unused recovery code
                {s.recovery_codes_left === 1 ? "" : "s"} left.
              </Text>
            </Text>
            <Group gap="xs">
              <Button variant="default" onClick={() => setDialog("codes")}>
                New recovery codes
              </Button>
              <Button variant="light" color="red" onClick={() => setDialog("disable")}>
                Turn off
              </Button>
            </Group>
          </>
        )}
      </Stack>
      <EnrolDialog
        opened={dialog === "enrol"}
        onClose={() => {
          setDialog(null);
          status.reload();
        }}
        onEnabled={changed}
      />
      <ConfirmIdentityDialog
        opened={dialog === "disable"}
        onClose={() => setDialog(null)}
        title="Turn off two-factor sign-in?"
        intro={`Sign-in will ask for your password only, and your recovery codes stop working.${s?.required ? " This Keygate requires it for your account: you will not be able to manage API keys until you turn it on again." : ""}`}
        submitLabel="Turn off"
        color="red"
        send={async (proof) => {
          await api.post("/api/auth/2fa/disable", proof);
          notify("Two-factor sign-in is off");
          changed();
          return null;
        }}
      />
      <ConfirmIdentityDialog
        opened={dialog === "codes"}
        onClose={() => {
          setDialog(null);
          status.reload();
        }}
        title="New recovery codes"
        intro="Ten new codes replace the old ones, which stop working at once."
        submitLabel="Make new codes"
        send={async (proof) => {
          const res = await api.post<{ recovery_codes: string[] }>(
            "/api/auth/2fa/recovery-codes",
            proof,
          );
          return res.data.recovery_codes;
        }}
      />
    </Paper>
  );
}

/** `/account`: the signed-in user's own settings. */
export function Account() {
  const user = useUser();
  return (
    <>
      <PageHeader
        title="Your account"
        description={`Signed in as ${user.username} (${user.role}).`}
      />
      <Stack maw={720}>
        <TwoFactorSection />
      </Stack>
    </>
  );
}
