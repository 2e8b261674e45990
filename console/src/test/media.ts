import { vi } from "vitest";

/**
 * A phone's width, as far as media queries go: every `max-width` query matches, so lists
 * become cards. Undone by `vi.unstubAllGlobals()`.
 */
export function onPhone(): void {
  vi.stubGlobal(
    "matchMedia",
    (query: string) =>
      ({
        matches: query.includes("max-width"),
        media: query,
        onchange: null,
        addEventListener: () => undefined,
        removeEventListener: () => undefined,
        addListener: () => undefined,
        removeListener: () => undefined,
        dispatchEvent: () => false,
      }) as MediaQueryList,
  );
}
