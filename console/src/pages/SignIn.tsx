import {
  Alert,
  Anchor,
  Box,
  Button,
  Center,
  Group,
  Paper,
  PasswordInput,
  Stack,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { useState } from "react";
import { useAuth } from "../auth";
import type { SessionEnd } from "../lib/api";
import { ApiError, messageOf } from "../lib/api";
import { codeDigits } from "../lib/twoFactor";

export function SignIn({ end }: { end: SessionEnd | null }) {
  const { signIn } = useAuth();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [tried, setTried] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  /** The second step, once the server said this account has two-factor sign-in. */
  const [second, setSecond] = useState<null | "otp" | "recovery">(null);
  const [code, setCode] = useState("");
  const [codeTried, setCodeTried] = useState(false);

  const userError = tried && username.trim() === "" ? "Enter your username." : undefined;
  const passError = tried && password === "" ? "Enter your password." : undefined;

  const startOver = (message: string | null = null) => {
    setSecond(null);
    setCode("");
    setCodeTried(false);
    setPassword("");
    setError(message);
  };

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setTried(true);
    setError(null);
    if (username.trim() === "" || password === "") return;
    setBusy(true);
    try {
      await signIn(username.trim(), password);
    } catch (err) {
      if (err instanceof ApiError && err.code === "TWO_FACTOR_REQUIRED") {
        setSecond("otp");
      } else {
        setError(messageOf(err));
        setPassword("");
      }
    } finally {
      setBusy(false);
    }
  };

  const otp = codeDigits(code);
  const recovery = code.trim();
  const codeError =
    codeTried && second === "otp" && otp === null
      ? "Enter the 6 digits the authenticator app shows."
      : codeTried && second === "recovery" && recovery === ""
        ? "Enter one of your recovery codes."
        : undefined;

  const submitCode = async (e: React.FormEvent) => {
    e.preventDefault();
    setCodeTried(true);
    setError(null);
    if (second === "otp" ? otp === null : recovery === "") return;
    setBusy(true);
    try {
      await signIn(
        username.trim(),
        password,
        second === "otp" ? { otp: otp as string } : { recovery_code: recovery },
      );
    } catch (err) {
      // The password no longer works (changed meanwhile): back to the first step.
      if (err instanceof ApiError && err.code === "INVALID_CREDENTIALS") {
        startOver(messageOf(err));
      } else {
        setError(messageOf(err));
        setCode("");
        setCodeTried(false);
      }
    } finally {
      setBusy(false);
    }
  };

  const switchTo = (next: "otp" | "recovery") => {
    setSecond(next);
    setCode("");
    setCodeTried(false);
    setError(null);
  };

  return (
    <Center mih="100dvh" p="md" component="main">
      <Box w="100%" maw={400}>
        <Stack gap={4} mb="lg" align="center">
          <Title order={1} size="h2">
            Keygate
          </Title>
          <Text c="dimmed" size="sm" ta="center">
            Sign in to manage API keys, subscribers and the panel.
          </Text>
        </Stack>
        <Paper withBorder shadow="sm" p="lg" radius="md">
          {second !== null ? (
            <form onSubmit={submitCode} noValidate aria-label="Two-factor sign-in">
              <Stack>
                <Text size="sm">
                  {second === "otp"
                    ? `Two-factor sign-in is on for ${username.trim()}. Open your authenticator app and enter the code it shows for Keygate.`
                    : "Enter one of the recovery codes you stored when you turned on two-factor sign-in. Each works once."}
                </Text>
                {error && (
                  <Alert color="red" title="Not signed in" role="alert">
                    {error}
                  </Alert>
                )}
                {second === "otp" ? (
                  <TextInput
                    key="otp"
                    id="signin-otp"
                    label="Authentication code"
                    inputMode="numeric"
                    autoComplete="one-time-code"
                    placeholder="123456"
                    maxLength={8}
                    value={code}
                    onChange={(e) => setCode(e.currentTarget.value)}
                    error={codeError}
                    required
                    autoFocus
                  />
                ) : (
                  <TextInput
                    key="recovery"
                    id="signin-recovery"
                    label="Recovery code"
                    autoComplete="off"
                    autoCapitalize="off"
                    spellCheck={false}
                    placeholder="xxxx-xxxx-xxxx-xxxx"
                    maxLength={64}
                    value={code}
                    onChange={(e) => setCode(e.currentTarget.value)}
                    error={codeError}
                    required
                    autoFocus
                  />
                )}
                <Button type="submit" loading={busy} fullWidth>
                  Verify and sign in
                </Button>
                <Group justify="space-between" gap="xs">
                  <Anchor
                    component="button"
                    type="button"
                    size="sm"
                    onClick={() => switchTo(second === "otp" ? "recovery" : "otp")}
                  >
                    {second === "otp"
                      ? "Use a recovery code instead"
                      : "Use the authenticator app instead"}
                  </Anchor>
                  <Anchor
                    component="button"
                    type="button"
                    size="sm"
                    c="dimmed"
                    onClick={() => startOver()}
                  >
                    Start over
                  </Anchor>
                </Group>
              </Stack>
            </form>
          ) : (
            <form onSubmit={submit} noValidate aria-label="Sign in">
              <Stack>
                {end && !error && (
                  <Alert
                    color={end.reason === "expired" ? "orange" : "blue"}
                    title={end.reason === "expired" ? "Session ended" : undefined}
                    role="status"
                  >
                    {end.message}
                  </Alert>
                )}
                {error && (
                  <Alert color="red" title="Not signed in" role="alert">
                    {error}
                  </Alert>
                )}
                <TextInput
                  id="signin-username"
                  label="Username"
                  autoComplete="username"
                  autoCapitalize="off"
                  spellCheck={false}
                  value={username}
                  onChange={(e) => setUsername(e.currentTarget.value)}
                  error={userError}
                  required
                  autoFocus
                />
                <PasswordInput
                  id="signin-password"
                  label="Password"
                  autoComplete="current-password"
                  value={password}
                  onChange={(e) => setPassword(e.currentTarget.value)}
                  error={passError}
                  required
                />
                <Button type="submit" loading={busy} fullWidth>
                  Sign in
                </Button>
              </Stack>
            </form>
          )}
        </Paper>
        <Text size="xs" c="dimmed" ta="center" mt="md">
          First start? The admin password was printed once in the server log (or set with
          KEYGATE_ADMIN_PASSWORD). Integrating a system?{" "}
          <Anchor href="/docs" size="xs">
            API reference
          </Anchor>
        </Text>
      </Box>
    </Center>
  );
}
