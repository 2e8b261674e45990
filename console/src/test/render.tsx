import { MantineProvider } from "@mantine/core";
import { configure, render } from "@testing-library/react";
import type { ReactNode } from "react";
import { AuthProvider, useAuth } from "../auth";

// happy-dom has no FontFaceSet; Mantine's autosizing textarea listens on it.
if (typeof document !== "undefined" && !("fonts" in document)) {
  Object.defineProperty(document, "fonts", {
    value: {
      addEventListener: () => undefined,
      removeEventListener: () => undefined,
      ready: Promise.resolve(),
    },
  });
}

// On a busy machine a whole page can take more than the default second to settle.
configure({ asyncUtilTimeout: 5000 });

/** Renders inside the console's Mantine provider, in test mode (no transitions). */
export function renderUi(ui: ReactNode) {
  return render(<MantineProvider env="test">{ui}</MantineProvider>);
}

function SignedIn({ children }: { children: ReactNode }) {
  const auth = useAuth();
  return auth.status === "signed-in" ? <>{children}</> : null;
}

/** Renders `ui` once the console's client has restored a session (see `fakeApi`). */
export function renderSignedIn(ui: ReactNode) {
  return renderUi(
    <AuthProvider>
      <SignedIn>{ui}</SignedIn>
    </AuthProvider>,
  );
}
