/**
 * `npm run openapi`: writes the checked-in API reference (scripts/reference.ts) from the
 * documents the server serves. `--check` writes nothing and fails, naming the files, when
 * any copy differs from what the server serves now.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { render, ROOT, servedDocuments } from "./reference.js";

const check = process.argv.includes("--check");
const files = await render(await servedDocuments());
const stale: string[] = [];
for (const [file, content] of Object.entries(files)) {
  const path = join(ROOT, file);
  let current: string | null = null;
  try {
    current = readFileSync(path, "utf8");
  } catch {
    // missing: stale
  }
  if (current === content) continue;
  stale.push(file);
  if (!check) writeFileSync(path, content);
}

if (check && stale.length > 0) {
  process.stderr.write(
    `the API reference is stale: ${stale.join(", ")} differ from what the server serves; run npm run openapi\n`,
  );
  process.exit(1);
}
process.stdout.write(
  check
    ? `openapi: ${Object.keys(files).join(", ")} are current\n`
    : stale.length === 0
      ? "openapi: nothing to write, every file is current\n"
      : `openapi: wrote ${stale.join(", ")}\n`,
);
