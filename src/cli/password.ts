import { passwordProblem } from "../auth/passwords.js";
import { AppError } from "../errors.js";
import { type Command, type Io, UsageError } from "./command.js";
import { readAll, readHidden } from "./prompt.js";

/** The new password: all of stdin with --password-stdin, else asked twice on the terminal. */
async function newPassword(username: string, fromStdin: boolean, io: Io): Promise<string> {
  if (fromStdin) return readAll(io.stdin);
  const first = await readHidden(`New password for "${username}": `, io.stdin, process.stderr);
  const problem = passwordProblem(first);
  if (problem) throw new UsageError(`password ${problem}`);
  const again = await readHidden("Type it again: ", io.stdin, process.stderr);
  if (again !== first) throw new UsageError("the two passwords differ; nothing was changed");
  return first;
}

export const resetPassword: Command = {
  name: "reset-password",
  summary: "set a new password for a user and end its sessions",
  synopsis: "<username> [--password-stdin]",
  help: `Sets a new password for an existing user, with the same rules as the API (at
least 8 characters), and ends every session of that user (its refresh tokens stop
working). A sign-in lock from failed attempts is lifted where Keygate keeps it in
Redis; a server without Redis keeps its lock in memory for at most 15 minutes.
The change is in the audit trail as user.update, by login@host via cli.

Asks for the password twice, without echo, when stdin is a terminal.

Options:
  --password-stdin   read the password from stdin (everything up to the end, less
                     one trailing newline), for scripts

Examples:
  keygate reset-password admin
  printf '%s' "$NEW_PASSWORD" | keygate reset-password admin --password-stdin`,
  options: { "password-stdin": { type: "boolean" } },
  args: ["username"],
  async run(values, args, io) {
    const username = args[0] as string;
    const fromStdin = values["password-stdin"] === true;
    if (!fromStdin && !io.stdin.isTTY) {
      throw new UsageError(
        "stdin is not a terminal to ask on; pipe the password in and pass --password-stdin",
      );
    }
    const { withKeygate } = await import("./session.js");
    await withKeygate(
      io.env,
      async (s) => {
        const user = await s.user(username);
        const password = await newPassword(username, fromStdin, io);
        try {
          await s.kg.auth.updateUser(s.op, user.id, { password });
        } catch (err) {
          // "password must be at least 8 characters": the field is named already.
          throw err instanceof AppError ? new UsageError(err.message) : err;
        }
        io.out(`password of "${user.username}" changed; every session of it has been ended\n`);
        if (user.disabled) {
          io.out(`"${user.username}" is disabled: it cannot sign in until an admin enables it\n`);
        }
      },
      { needsRedis: true },
    );
  },
};
