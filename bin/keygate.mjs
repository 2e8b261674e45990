#!/usr/bin/env node
// The `keygate` command: runs the TypeScript sources through tsx, as `npm start` does
// (`node --import tsx`), from wherever it is called.
import "tsx";

await import("../src/cli/main.ts");
