import { parseArgs } from "node:util";
import { ConfigError } from "../config.js";
import { AppError } from "../errors.js";
import { VERSION } from "../version.js";
import { type Command, EXIT, Failure, type Io, printable, UsageError } from "./command.js";
import { doctor } from "./doctor.js";
import { keysList, keysMint, keysRevoke, keysRoll } from "./keys.js";
import { migrate } from "./migrate.js";
import { resetPassword } from "./password.js";
import { rotateMasterKey } from "./rotate.js";
import { Cancelled } from "./prompt.js";
import { sign } from "./sign.js";
import { resetTwoFactor } from "./twofactor.js";

const serve: Command = {
  name: "serve",
  summary: "start the server, as npm start does",
  synopsis: "",
  help: `Starts Keygate: applies pending migrations, creates the first admin when there
are no users, listens on KEYGATE_HOST:KEYGATE_PORT and stops cleanly on SIGTERM.
(npm start also builds the console first when it is missing or stale.)

Example:
  KEYGATE_PORT=8081 keygate serve`,
  options: {},
  args: [],
  async run() {
    const { serve: start } = await import("../serve.js");
    await start();
  },
};

const COMMANDS: Command[] = [
  serve,
  migrate,
  resetPassword,
  resetTwoFactor,
  keysList,
  keysMint,
  keysRoll,
  keysRevoke,
  rotateMasterKey,
  sign,
  doctor,
];

const usageLine = (c: Command) => `keygate ${c.name}${c.synopsis ? ` ${c.synopsis}` : ""}`;

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => (c.name + argsHint(c)).length));
  const list = COMMANDS.map((c) => `  ${(c.name + argsHint(c)).padEnd(width)}  ${c.summary}`);
  return `keygate ${VERSION}: run a Keygate server and act on it from its command line

Usage: keygate <command> [options]

Commands:
${list.join("\n")}

Options:
  -h, --help   this help; after a command, that command's (keygate keys mint --help)
  --version    print the version

Configuration comes from the server's environment variables (KEYGATE_DATABASE_URL,
KEYGATE_REDIS_URL, ...; see the README). Exit codes: 0 done, 1 failed (configuration,
database, Redis), 2 wrong usage or input (unknown command or option, missing argument,
unknown user or key, a value the rules refuse).
doctor and sign need none of them: doctor checks a Keygate over HTTP, from any machine;
sign only computes signature headers.
`;
}

const argsHint = (c: Command) => c.args.map((a) => ` <${a}>`).join("");

function commandHelp(c: Command): string {
  return `Usage: ${usageLine(c)}\n\n${c.help}\n`;
}

/** The command named by the first words of `argv`, and the words after its name. */
function find(argv: string[]): { command: Command; rest: string[] } | null {
  for (const c of COMMANDS) {
    const words = c.name.split(" ");
    if (words.every((w, i) => argv[i] === w)) return { command: c, rest: argv.slice(words.length) };
  }
  return null;
}

/** parseArgs' refusals, reworded as one line that names the option. */
function usageFromParseError(err: Error & { code?: string }, c: Command): UsageError {
  const quoted = /'([^']+)'/.exec(err.message)?.[1] ?? "";
  const option = quoted.split(" ")[0] ?? quoted;
  const see = `; see keygate ${c.name} --help`;
  switch (err.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return new UsageError(`unknown option ${printable(option)} for ${c.name}${see}`);
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return new UsageError(
        c.options[option.replace(/^-+/, "")]?.type === "boolean"
          ? `option ${printable(option)} takes no value${see}`
          : `option ${printable(option)} needs a value${see}`,
      );
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return new UsageError(`unexpected argument "${printable(option)}" for ${c.name}${see}`);
    default:
      return new UsageError(`${err.message}${see}`);
  }
}

async function dispatch(argv: string[], io: Io): Promise<void> {
  const first = argv[0];
  if (first === undefined) throw new UsageError("no command given; see keygate --help");
  if (first === "-h" || first === "--help" || (first === "help" && argv.length === 1)) {
    io.out(mainHelp());
    return;
  }
  if (first === "--version" || first === "-V") {
    io.out(`keygate ${VERSION}\n`);
    return;
  }
  if (first === "help") return dispatch([...argv.slice(1), "--help"], io);
  const found = find(argv);
  if (!found) {
    if (first === "keys") {
      const sub = argv[1];
      if (sub === undefined || sub === "--help" || sub === "-h") {
        const list = COMMANDS.filter((c) => c.name.startsWith("keys "));
        const text = `Usage: keygate keys <list|mint|roll|revoke> [options]\n\n${list
          .map((c) => `  ${usageLine(c)}\n      ${c.summary}`)
          .join("\n")}\n`;
        if (sub === undefined) {
          throw new UsageError(
            "keys needs a subcommand: list, mint, roll or revoke (keygate keys --help)",
          );
        }
        io.out(text);
        return;
      }
      throw new UsageError(
        `unknown keys subcommand "${printable(sub)}"; use list, mint, roll or revoke (keygate keys --help)`,
      );
    }
    throw new UsageError(
      first.startsWith("-")
        ? `unknown option ${printable(first)}; see keygate --help`
        : `unknown command "${printable(first)}"; see keygate --help`,
    );
  }
  const { command, rest } = found;
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw usageFromParseError(err as Error & { code?: string }, command);
  }
  if (parsed.values.help) {
    io.out(commandHelp(command));
    return;
  }
  const { positionals } = parsed;
  if (positionals.length < command.args.length) {
    const missing = command.args[positionals.length];
    throw new UsageError(`${command.name} needs <${missing}>; usage: ${usageLine(command)}`);
  }
  if (positionals.length > command.args.length) {
    throw new UsageError(
      `unexpected argument "${printable(positionals[command.args.length] ?? "")}" for ${command.name}; usage: ${usageLine(command)}`,
    );
  }
  await command.run(parsed.values, positionals, io);
}

const USAGE_CODES = new Set(["VALIDATION_ERROR", "NOT_FOUND", "CONFLICT", "FORBIDDEN"]);

/** Runs one command line; answers the exit code. Every failure is one `keygate:` line on stderr. */
export async function run(argv: string[], io: Io): Promise<number> {
  try {
    await dispatch(argv, io);
    return EXIT.ok;
  } catch (err) {
    const line = (msg: string) =>
      io.err(
        `keygate: ${msg
          .split("\n")
          .map((part) => part.trim())
          .join(" ")}\n`,
      );
    if (err instanceof UsageError) {
      line(err.message);
      return EXIT.usage;
    }
    if (err instanceof AppError) {
      line(err.message);
      return USAGE_CODES.has(err.code) ? EXIT.usage : EXIT.failure;
    }
    if (err instanceof Cancelled) {
      line("cancelled; nothing was changed");
      return EXIT.failure;
    }
    if (err instanceof ConfigError || err instanceof Failure) {
      line(err.message);
      return EXIT.failure;
    }
    line(err instanceof Error ? err.message : String(err));
    return EXIT.failure;
  }
}
