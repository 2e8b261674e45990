import { Button, Center, Loader, Stack, Text } from "@mantine/core";
import type { ReactNode } from "react";
import { AuthProvider, useAuth, useUser } from "./auth";
import { Shell } from "./components/Shell";
import { Empty, PageHeader } from "./components/ui";
import { useEnvironment } from "./lib/environment";
import { Link, match, trimSlashes, useLocation } from "./lib/router";
import { Account } from "./pages/Account";
import { Audit } from "./pages/Audit";
import { Dashboard } from "./pages/Dashboard";
import { KeyDetail } from "./pages/KeyDetail";
import { Keys } from "./pages/Keys";
import { NasPage } from "./pages/Nas";
import { Services } from "./pages/Services";
import { SignIn } from "./pages/SignIn";
import { SubscriberDetail } from "./pages/SubscriberDetail";
import { Subscribers } from "./pages/Subscribers";
import { Transactions } from "./pages/Transactions";
import { Users } from "./pages/Users";
import { Webhooks } from "./pages/Webhooks";

function NotFound() {
  return (
    <>
      <PageHeader title="Page not found" />
      <Empty
        title="Nothing here"
        description="The address may be mistyped, or the record was deleted."
        action={
          <Button component={Link} href="/">
            Go to the dashboard
          </Button>
        }
      />
    </>
  );
}

function AdminOnly({ children, what }: { children: ReactNode; what: string }) {
  const user = useUser();
  if (user.isAdmin) return <>{children}</>;
  return (
    <>
      <PageHeader title={what} />
      <Empty
        title="Admins only"
        description={`You are signed in as a ${user.role}; ${what.toLowerCase()} are managed by an admin.`}
        action={
          <Button component={Link} href="/">
            Go to the dashboard
          </Button>
        }
      />
    </>
  );
}

const id = (p: Record<string, string> | null) =>
  p && /^\d{1,9}$/.test(p.id ?? "") ? Number(p.id) : null;

function Page({ path }: { path: string }) {
  if (path === "/" || path === "") return <Dashboard />;
  if (path === "/keys") return <Keys />;
  const keyId = id(match("/keys/:id", path));
  if (keyId) return <KeyDetail key={keyId} id={keyId} />;
  if (path === "/subscribers") return <Subscribers />;
  const subId = id(match("/subscribers/:id", path));
  if (subId) return <SubscriberDetail key={subId} id={subId} />;
  if (path === "/services") return <Services />;
  if (path === "/transactions") return <Transactions />;
  if (path === "/account") return <Account />;
  if (path === "/webhooks") return <Webhooks />;
  if (path === "/nas")
    return (
      <AdminOnly what="NAS devices">
        <NasPage />
      </AdminOnly>
    );
  if (path === "/users")
    return (
      <AdminOnly what="Users">
        <Users />
      </AdminOnly>
    );
  if (path === "/audit")
    return (
      <AdminOnly what="Audit trail">
        <Audit />
      </AdminOnly>
    );
  return <NotFound />;
}

function Gate() {
  const auth = useAuth();
  const { path } = useLocation();
  const env = useEnvironment();
  if (auth.status === "restoring")
    return (
      <Center mih="100dvh" role="status" aria-live="polite">
        <Stack align="center" gap="xs">
          <Loader />
          <Text size="sm" c="dimmed">
            Restoring your session…
          </Text>
        </Stack>
      </Center>
    );
  if (auth.status === "signed-out") return <SignIn end={auth.end} />;
  return (
    <Shell>
      {/* A new page for each environment: flipping Test data fetches everything shown again. */}
      <Page key={`${env} ${path}`} path={trimSlashes(path) || "/"} />
    </Shell>
  );
}

export function App() {
  return (
    <AuthProvider>
      <Gate />
    </AuthProvider>
  );
}
