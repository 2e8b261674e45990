import type { Command } from "./command.js";

export const resetTwoFactor: Command = {
  name: "reset-2fa",
  summary: "turn off two-factor sign-in for a user who lost the authenticator",
  synopsis: "<username>",
  help: `For a lock-out: turns off two-factor sign-in for an existing user, drops its
recovery codes and any enrolment not yet confirmed, and ends every session of that
user. The user then signs in with the password alone and can turn it on again (with a
new authenticator entry). A sign-in lock from failed attempts is lifted where Keygate
keeps it in Redis; a server without Redis keeps its lock in memory for at most 15
minutes. The change is in the audit trail as auth.2fa_reset, by login@host via cli.

Check who is asking before you run it: it removes the second factor of the account.
A user without two-factor sign-in is left as it is (exit code 0).

Example:
  keygate reset-2fa alice`,
  options: {},
  args: ["username"],
  async run(_values, args, io) {
    const username = args[0] as string;
    const { withKeygate } = await import("./session.js");
    await withKeygate(
      io.env,
      async (s) => {
        const user = await s.user(username);
        const reset = await s.kg.twoFactor.reset(s.op, user.id);
        io.out(
          reset
            ? `two-factor sign-in of "${user.username}" is off; its recovery codes are void and every session of it has been ended\n`
            : `"${user.username}" does not have two-factor sign-in; nothing was changed\n`,
        );
        if (reset && s.kg.twoFactor.requiredFor(user)) {
          io.out(
            `KEYGATE_REQUIRE_2FA=${s.kg.twoFactor.policy}: "${user.username}" must turn it on again before managing keys\n`,
          );
        }
      },
      { needsRedis: true },
    );
  },
};
