import {
  Alert,
  Anchor,
  Box,
  Button,
  Center,
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
import { messageOf } from "../lib/api";

export function SignIn({ end }: { end: SessionEnd | null }) {
  const { signIn } = useAuth();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [tried, setTried] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const userError = tried && username.trim() === "" ? "Enter your username." : undefined;
  const passError = tried && password === "" ? "Enter your password." : undefined;

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setTried(true);
    setError(null);
    if (username.trim() === "" || password === "") return;
    setBusy(true);
    try {
      await signIn(username.trim(), password);
    } catch (err) {
      setError(messageOf(err));
      setPassword("");
    } finally {
      setBusy(false);
    }
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
