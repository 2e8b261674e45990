#!/usr/bin/env node
// Builds the console (console/dist) when it is missing or older than its sources, so
// `npm start` on a fresh clone serves it without a separate build step.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const consoleDir = join(root, "console");
const built = join(consoleDir, "dist", "index.html");

function newest(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let latest = 0;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

/** Why a build is needed, or null when console/dist is up to date. */
export function staleReason() {
  if (!existsSync(built)) return "console/dist is missing";
  const sources = Math.max(
    newest(join(consoleDir, "src")),
    newest(join(consoleDir, "index.html")),
    newest(join(consoleDir, "vite.config.ts")),
  );
  return sources > statSync(built).mtimeMs ? "console sources changed since the last build" : null;
}

export function ensureConsole({ quiet = false } = {}) {
  const reason = staleReason();
  if (!reason) return false;
  if (!quiet) process.stdout.write(`keygate: building the console (${reason})\n`);
  const vite = join(root, "node_modules", "vite", "bin", "vite.js");
  const res = spawnSync(
    process.execPath,
    [vite, "build", "--config", join(consoleDir, "vite.config.ts"), "--logLevel", "warn"],
    {
      cwd: root,
      stdio: quiet ? ["ignore", "ignore", "inherit"] : "inherit",
      // A test runner's NODE_ENV=test would otherwise produce React's development build.
      env: { ...process.env, NODE_ENV: "production" },
    },
  );
  if (res.status !== 0) {
    throw new Error(`the console build failed (exit ${res.status}); run npm run build:console`);
  }
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    ensureConsole();
  } catch (err) {
    process.stderr.write(`keygate: ${err.message}\n`);
    process.exit(1);
  }
}
