import { readFileSync, statSync } from "node:fs";
import type { ParseArgsConfig } from "node:util";
import { unreadableReason } from "../files.js";

/** Exit codes of the `keygate` command. */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** Could not be done: configuration, database, Redis, a failed migration. */
  failure: 1,
  /** The command line or its input is wrong: unknown command or option, missing argument,
   * unknown user or key, a value the rules refuse. */
  usage: 2,
} as const;

/** Wrong usage or input: printed as one line, exit code 2. */
export class UsageError extends Error {}

/** A failure that is not the operator's input: printed as one line, exit code 1. */
export class Failure extends Error {}

/** Where a command reads and writes; the process's own streams outside tests. */
export type Io = {
  out: (text: string) => void;
  err: (text: string) => void;
  stdin: NodeJS.ReadStream;
  env: Record<string, string | undefined>;
};

export type Values = Record<string, string | boolean | undefined>;

export type Command = {
  /** As typed after `keygate`, e.g. "keys mint". */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Arguments and options after the name, e.g. "<id>" or "--owner <username> [--json]". */
  synopsis: string;
  /** The rest of `--help`: what it does, each option, an example. */
  help: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  /** Names of the required positional arguments, in order. */
  args: string[];
  run(values: Values, args: string[], io: Io): Promise<void>;
};

/** Replaces control characters, so a stored name cannot steer the operator's terminal. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this removes
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}

/**
 * The text of a file holding a secret (`--key-file`, `--secret-file`), with one line naming
 * why it cannot be read; warns when others may read it (POSIX modes only): a key file others
 * can read is a key others have.
 */
export function readSecretFile(flag: string, file: string, what: string, io: Io): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${flag} ${printable(file)}: ${unreadableReason(err)}`);
  }
  const mode = process.platform === "win32" ? 0 : statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    io.err(
      `keygate: warning: ${flag} ${printable(file)} can be read by others (mode ${mode.toString(8).padStart(4, "0")}); ` +
        `anyone who can read it has the ${what}: chmod 600 ${printable(file)}\n`,
    );
  }
  return text;
}
