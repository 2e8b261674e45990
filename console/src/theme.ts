import { Badge, createTheme } from "@mantine/core";
import type { Environment } from "./lib/environment";

export const theme = createTheme({
  primaryColor: "blue",
  defaultRadius: "md",
  fontFamily:
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif',
  fontFamilyMonospace:
    'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace',
  headings: { fontWeight: "650" },
  components: {
    // In a tight table cell a badge keeps its whole label rather than shrinking to "A…".
    Badge: Badge.extend({ styles: { root: { minWidth: "max-content" } } }),
  },
});

/** Test data has its own accent, so a page of test data never looks like live data. */
const testTheme = createTheme({ ...theme, primaryColor: "orange" });

export const themeFor = (env: Environment) => (env === "test" ? testTheme : theme);
