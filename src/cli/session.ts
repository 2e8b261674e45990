import { hostname, userInfo } from "node:os";
import { operator } from "../auth/principal.js";
import type { Principal } from "../auth/principal.js";
import type { UserView } from "../auth/service.js";
import { type Config, loadConfig, redactUrl } from "../config.js";
import { createKeygate, type Keygate, keyCacheTtlMs } from "../keygate.js";
import { Failure, printable, UsageError } from "./command.js";

/** How long a command waits for Redis before it acts without it. */
const REDIS_WAIT_MS = 3_000;

export type Session = {
  kg: Keygate;
  config: Config;
  /** The operator as the services see it: an admin's rights, audited as `via cli`. */
  op: Principal;
  /** False when KEYGATE_REDIS_URL is set but Redis did not answer in time. */
  redisReady: boolean;
  /** How long a running server may keep accepting a key it verified before a change. */
  cacheTtlS: number;
  /** The live user with exactly this username, or a usage error naming it. */
  user(username: string): Promise<UserView>;
};

/** A database that cannot be opened or migrated, named (without its password). */
export function databaseFailure(url: string, err: unknown): Failure {
  const why = err instanceof Error ? err.message : String(err);
  return new Failure(`database ${redactUrl(url)}: ${why}`);
}

/** Who runs the command, for the audit trail: `login@host`. */
function operatorName(env: Record<string, string | undefined>): string {
  let login: string | undefined;
  try {
    login = userInfo().username;
  } catch {
    login = env.USER ?? env.LOGNAME;
  }
  return `${login ?? "operator"}@${hostname()}`;
}

/**
 * Wires Keygate as the server does, for one command: the same services, rules, audit trail
 * and eviction channel, without the serving process's timers. Closed when `fn` ends.
 */
export async function withKeygate<T>(
  env: Record<string, string | undefined>,
  fn: (s: Session) => Promise<T>,
  opts: { needsRedis?: boolean } = {},
): Promise<T> {
  const config = loadConfig(env);
  let kg: Keygate;
  try {
    kg = await createKeygate(config, { oneShot: true });
  } catch (err) {
    throw databaseFailure(config.databaseUrl, err);
  }
  // Messages the services log (e.g. Redis lost) go to stderr as one line each.
  kg.warn = (msg) => process.stderr.write(`keygate: ${msg}\n`);
  kg.info = () => {};
  try {
    const redisReady = opts.needsRedis && kg.cluster ? await kg.cluster.ready(REDIS_WAIT_MS) : true;
    const op = operator(operatorName(env));
    return await fn({
      kg,
      config,
      op,
      redisReady,
      cacheTtlS: keyCacheTtlMs(config) / 1000,
      async user(username) {
        const users = await kg.auth.listUsers(op);
        const found = users.find((u) => u.username === username);
        if (found) return found;
        throw new UsageError(
          users.length === 0
            ? `no user "${username}": there are no users yet; start the server once (keygate serve) to create the first admin`
            : `no user "${username}"; the users are ${users
                .slice(0, 10)
                .map((u) => `"${printable(u.username)}"`)
                .join(", ")}${users.length > 10 ? `, and ${users.length - 10} more` : ""}`,
        );
      },
    });
  } finally {
    await kg.close();
  }
}
