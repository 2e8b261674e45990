/**
 * Which data the console shows and changes: live, or test behind the "Test data" switch. The
 * choice is kept in localStorage (every tab follows it) and sent on every `/api` request as
 * `Keygate-Environment`, so what a page shows and what the server acts on never differ.
 */
import { useSyncExternalStore } from "react";

export type Environment = "live" | "test";

export const ENVIRONMENT_HEADER = "Keygate-Environment";
const STORAGE_KEY = "keygate-environment";

function stored(): Environment {
  try {
    return typeof localStorage !== "undefined" && localStorage.getItem(STORAGE_KEY) === "test"
      ? "test"
      : "live";
  } catch {
    return "live";
  }
}

let current: Environment = stored();
const listeners = new Set<() => void>();

const emit = () => {
  for (const fn of listeners) fn();
};

export function currentEnvironment(): Environment {
  return current;
}

export function setEnvironment(env: Environment): void {
  try {
    if (typeof localStorage !== "undefined") localStorage.setItem(STORAGE_KEY, env);
  } catch {
    // Private mode: the choice lasts until the page is reloaded.
  }
  if (env === current) return;
  current = env;
  emit();
}

export function subscribeEnvironment(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

if (typeof window !== "undefined")
  window.addEventListener("storage", (e) => {
    if (e.key !== STORAGE_KEY && e.key !== null) return;
    const next = stored();
    if (next === current) return;
    current = next;
    emit();
  });

/** The environment the console shows; re-renders when the switch (here or in another tab) flips. */
export function useEnvironment(): Environment {
  return useSyncExternalStore(subscribeEnvironment, currentEnvironment, currentEnvironment);
}

export const otherEnvironment = (env: Environment): Environment =>
  env === "test" ? "live" : "test";
