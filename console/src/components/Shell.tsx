import {
  Alert,
  Anchor,
  AppShell,
  Badge,
  Box,
  Burger,
  Button,
  Group,
  NavLink,
  Switch,
  Text,
  useComputedColorScheme,
  useMantineColorScheme,
} from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { type ReactNode, useEffect, useRef } from "react";
import { useAuth, useUser } from "../auth";
import { setEnvironment, useEnvironment } from "../lib/environment";
import { Link, match, navigate, useLocation } from "../lib/router";
import { Notifications } from "./Notifications";

type Item = { href: string; label: string; admin?: boolean };

export const NAV: Item[] = [
  { href: "/", label: "Dashboard" },
  { href: "/keys", label: "API keys" },
  { href: "/subscribers", label: "Subscribers" },
  { href: "/services", label: "Services" },
  { href: "/transactions", label: "Transactions" },
  { href: "/nas", label: "NAS devices", admin: true },
  { href: "/users", label: "Users", admin: true },
  { href: "/webhooks", label: "Webhooks", admin: true },
  { href: "/audit", label: "Audit trail", admin: true },
];

function isActive(href: string, path: string): boolean {
  return href === "/" ? path === "/" : path === href || path.startsWith(`${href}/`);
}

function Logo() {
  return (
    <Group gap={8} wrap="nowrap">
      <svg width="22" height="22" viewBox="0 0 16 16" aria-hidden="true">
        <circle
          cx="5"
          cy="8"
          r="3.2"
          fill="none"
          stroke="var(--mantine-primary-color-6)"
          strokeWidth="1.8"
        />
        <path
          d="M8 8h7M12.5 8v2.6M14.6 8v2"
          stroke="var(--mantine-primary-color-6)"
          strokeWidth="1.8"
        />
      </svg>
      <Text fw={700} size="lg" className="logo-text">
        Keygate
      </Text>
    </Group>
  );
}

function ColorToggle() {
  const { setColorScheme } = useMantineColorScheme();
  const computed = useComputedColorScheme("light");
  const next = computed === "dark" ? "light" : "dark";
  return (
    <Button variant="subtle" size="compact-sm" color="gray" onClick={() => setColorScheme(next)}>
      Switch to {next} theme
    </Button>
  );
}

export const TEST_DATA_BANNER =
  "Test data — you are seeing and changing test subscribers, transactions and keys; live data is hidden";

/** The header's switch between live and test data; the choice outlives the page. */
function TestDataSwitch() {
  const env = useEnvironment();
  return (
    <Switch
      label="Test data"
      color="orange"
      size="sm"
      checked={env === "test"}
      onChange={(e) => setEnvironment(e.currentTarget.checked ? "test" : "live")}
      title={
        env === "test"
          ? "Showing test data; turn off to see live data"
          : "Show and change test data instead of live data"
      }
      styles={{ label: { fontWeight: 600, whiteSpace: "nowrap" } }}
    />
  );
}

/** A record of one environment is not found in the other: its page gives way to the list. */
const DETAIL_PAGES = [
  ["/keys/:id", "/keys"],
  ["/subscribers/:id", "/subscribers"],
] as const;

/** The signed-in frame: header with the user and sign-out, navigation, and the page. */
export function Shell({ children }: { children: ReactNode }) {
  const [opened, { toggle, close }] = useDisclosure(false);
  const { path } = useLocation();
  const user = useUser();
  const { signOut } = useAuth();
  const env = useEnvironment();
  const test = env === "test";
  useEffect(close, [path, close]);

  const shown = useRef(env);
  useEffect(() => {
    if (shown.current === env) return;
    shown.current = env;
    const list = DETAIL_PAGES.find(([pattern]) => match(pattern, path))?.[1];
    if (list) navigate(list);
  }, [env, path]);
  useEffect(() => {
    document.title = test ? "Test data · Keygate" : "Keygate";
  }, [test]);

  return (
    <AppShell
      // The banner takes what the header gains in test mode: more lines on a narrow screen.
      header={{ height: test ? { base: 116, xs: 100, sm: 84 } : 56 }}
      navbar={{ width: 230, breakpoint: "sm", collapsed: { mobile: !opened } }}
      padding={{ base: "sm", sm: "lg" }}
    >
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <AppShell.Header
        data-environment={env}
        style={{
          display: "flex",
          flexDirection: "column",
          borderBottom: test ? "3px solid var(--mantine-color-orange-6)" : undefined,
        }}
      >
        {test && (
          <Box
            role="status"
            data-testid="test-data-banner"
            bg="orange.4"
            c="dark.9"
            px="md"
            py={4}
            style={{ flex: 1, display: "flex", alignItems: "center", justifyContent: "center" }}
          >
            <Text size="xs" fw={700} ta="center" lh={1.3}>
              {TEST_DATA_BANNER}
            </Text>
          </Box>
        )}
        <Group h={56} px="md" justify="space-between" wrap="nowrap" style={{ flex: "none" }}>
          <Group gap="sm" wrap="nowrap">
            <Burger
              opened={opened}
              onClick={toggle}
              hiddenFrom="sm"
              size="sm"
              aria-label={opened ? "Close navigation" : "Open navigation"}
              aria-expanded={opened}
              aria-controls="main-nav"
            />
            <Anchor
              component={Link}
              href="/"
              underline="never"
              c="inherit"
              aria-label="Keygate dashboard"
            >
              <Logo />
            </Anchor>
          </Group>
          <Group gap="sm" wrap="nowrap">
            <Notifications />
            <TestDataSwitch />
            <Box visibleFrom="xs">
              <Group gap={6} wrap="nowrap">
                <Anchor
                  component={Link}
                  href="/account"
                  size="sm"
                  fw={500}
                  c="inherit"
                  data-testid="signed-in-as"
                  aria-label={`Your account (${user.username}): two-factor sign-in`}
                >
                  {user.username}
                </Anchor>
                <Badge variant="light" color={user.isAdmin ? "blue" : "grape"} size="sm">
                  {user.role}
                </Badge>
              </Group>
            </Box>
            <Button
              variant="default"
              size="compact-sm"
              onClick={() => void signOut().then(() => navigate("/", { replace: true }))}
            >
              Sign out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" id="main-nav" aria-label="Main">
        <AppShell.Section grow component="nav" aria-label="Sections">
          {NAV.filter((i) => !i.admin || user.isAdmin).map((i) => (
            <NavLink
              key={i.href}
              component={Link}
              href={i.href}
              label={i.label}
              active={isActive(i.href, path)}
              aria-current={isActive(i.href, path) ? "page" : undefined}
              onClick={close}
            />
          ))}
          <NavLink
            href="/docs"
            label="API reference"
            target="_blank"
            rel="noreferrer"
            component="a"
          />
        </AppShell.Section>
        <AppShell.Section>
          <Box hiddenFrom="xs" px="sm" pb="xs">
            <Text size="sm">
              Signed in as{" "}
              <Anchor component={Link} href="/account" size="sm" fw={700}>
                {user.username}
              </Anchor>{" "}
              ({user.role})
            </Text>
          </Box>
          <ColorToggle />
        </AppShell.Section>
      </AppShell.Navbar>
      <AppShell.Main id="main" tabIndex={-1} style={{ outline: "none" }}>
        <Box maw={1280} mx="auto">
          {user.needsTwoFactor && path !== "/account" && (
            <Alert color="orange" title="Turn on two-factor sign-in" mb="md" role="status">
              This Keygate requires it for your account before you mint, change, roll or revoke API
              keys.{" "}
              <Anchor component={Link} href="/account" size="sm">
                Turn it on in your account
              </Anchor>
            </Alert>
          )}
          {children}
        </Box>
      </AppShell.Main>
    </AppShell>
  );
}
