import "@mantine/core/styles.css";
import "@mantine/charts/styles.css";
import "./styles.css";
import { MantineProvider } from "@mantine/core";
import { type ReactNode, StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { ToastProvider } from "./components/Toasts";
import { useEnvironment } from "./lib/environment";
import { themeFor } from "./theme";

const root = document.getElementById("root");
if (!root) throw new Error("#root is missing from index.html");
// The page's Content-Security-Policy admits a <style> element only with this response's nonce,
// which the server writes on this meta element: Mantine puts it on the <style> it injects.
const nonce = document.querySelector<HTMLMetaElement>('meta[property="csp-nonce"]')?.nonce ?? "";
const styleNonce = () => nonce;
// The scroll lock of Mantine's modals (react-style-singleton) injects a <style> too; it takes
// its nonce from get-nonce, which reads this global when nothing has set one.
(window as unknown as { __webpack_nonce__?: string }).__webpack_nonce__ = nonce;

function Themed({ children }: { children: ReactNode }) {
  const env = useEnvironment();
  return (
    <MantineProvider theme={themeFor(env)} defaultColorScheme="auto" getStyleNonce={styleNonce}>
      {children}
    </MantineProvider>
  );
}

createRoot(root).render(
  <StrictMode>
    <Themed>
      <ToastProvider>
        <App />
      </ToastProvider>
    </Themed>
  </StrictMode>,
);
