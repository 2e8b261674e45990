import { run } from "./run.js";

// The `keygate` command (bin/keygate.mjs, npm run keygate). Output goes to the process's own
// streams; a one-shot command exits once they are written, whatever handles remain open.
const io = {
  out: (text: string) => void process.stdout.write(text),
  err: (text: string) => void process.stderr.write(text),
  stdin: process.stdin,
  env: process.env,
};

// `keygate serve` behaves exactly as `npm start`; every other command ends in one line.
const serving = process.argv[2] === "serve";
if (!serving) {
  const oneLine = (err: unknown) => {
    process.stderr.write(`keygate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  };
  process.on("uncaughtException", oneLine);
  process.on("unhandledRejection", oneLine);
}

const code = await run(process.argv.slice(2), io);
if (!serving || code !== 0) {
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}
