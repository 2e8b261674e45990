/**
 * `npm run check`: every `pattern` of every schema the API validates with runs in linear
 * time (checked by recheck, a ReDoS checker), and every string a client sends is bounded by
 * a `maxLength` that Ajv checks before the pattern could matter. Reads the OpenAPI document
 * the server itself serves, so no route can be missed.
 */
import { checkSync } from "recheck";
import { loadConfig } from "../src/config.js";
import { buildApp } from "../src/http/app.js";
import { createKeygate } from "../src/keygate.js";

type Schema = Record<string, unknown>;

const kg = await createKeygate(
  loadConfig({ KEYGATE_DATABASE_URL: "sqlite::memory:", KEYGATE_LOG_LEVEL: "silent" }),
);
const app = await buildApp(kg, { logger: false });
await app.ready();
const doc = app.swagger() as Schema;
await app.close();
await kg.close();

const problems: string[] = [];
const patterns = new Map<string, string>();

/** Walks a schema: records its patterns, and (for input) strings without a bound. */
function walk(schema: unknown, where: string, input: boolean): void {
  if (schema === null || typeof schema !== "object") return;
  if (Array.isArray(schema)) {
    schema.forEach((s, i) => walk(s, `${where}[${i}]`, input));
    return;
  }
  const s = schema as Schema;
  if (typeof s.pattern === "string") patterns.set(s.pattern, where);
  const bounded = typeof s.maxLength === "number" || Array.isArray(s.enum) || s.const !== undefined;
  if (input && s.type === "string" && !bounded) problems.push(`${where}: string without maxLength`);
  for (const [k, v] of Object.entries(s)) {
    if (k === "examples" || k === "example" || k === "default") continue;
    walk(v, `${where}.${k}`, input);
  }
}

for (const [path, item] of Object.entries(doc.paths as Record<string, Schema>)) {
  for (const [method, op] of Object.entries(item)) {
    const o = op as Schema;
    const at = `${method.toUpperCase()} ${path}`;
    walk(o.parameters, `${at} parameters`, true);
    walk(o.requestBody, `${at} body`, true);
    walk(o.responses, `${at} responses`, false);
  }
}
walk(doc.components, "components", false);

for (const [pattern, where] of patterns) {
  const result = checkSync(pattern, "u");
  if (result.status !== "safe") {
    problems.push(`${where}: pattern ${pattern} is ${result.status} (${JSON.stringify(result)})`);
  }
}

if (problems.length > 0) {
  process.stderr.write(`schema check failed:\n${problems.map((p) => `  ${p}`).join("\n")}\n`);
  process.exit(1);
}
process.stdout.write(
  `schema check: ${patterns.size} patterns linear, every input string bounded\n`,
);
