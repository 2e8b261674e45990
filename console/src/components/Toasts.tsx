import { Notification, Stack } from "@mantine/core";
import { createContext, type ReactNode, useCallback, useContext, useState } from "react";

type Toast = { id: number; message: string; color: string };
type Notify = (message: string, color?: string) => void;

const Ctx = createContext<Notify>(() => undefined);
let next = 1;

/** Short confirmations ("Key revoked") in a polite live region, gone after a few seconds. */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const dismiss = useCallback((id: number) => setToasts((t) => t.filter((x) => x.id !== id)), []);
  const notify = useCallback<Notify>(
    (message, color = "teal") => {
      const id = next++;
      setToasts((t) => [...t.slice(-2), { id, message, color }]);
      setTimeout(() => dismiss(id), 4000);
    },
    [dismiss],
  );
  return (
    <Ctx.Provider value={notify}>
      {children}
      <Stack
        gap="xs"
        role="status"
        aria-live="polite"
        style={{
          position: "fixed",
          right: 16,
          bottom: 16,
          left: "auto",
          // Below Mantine's modals (200): a toast never covers a dialog's buttons.
          zIndex: 150,
          width: "min(360px, calc(100vw - 32px))",
        }}
      >
        {toasts.map((t) => (
          <Notification
            key={t.id}
            color={t.color}
            onClose={() => dismiss(t.id)}
            closeButtonProps={{ "aria-label": "Dismiss" }}
            withBorder
          >
            {t.message}
          </Notification>
        ))}
      </Stack>
    </Ctx.Provider>
  );
}

export function useNotify(): Notify {
  return useContext(Ctx);
}
