import { ConfigError, loadConfig, redactUrl } from "./config.js";
import { buildApp } from "./http/app.js";
import { createKeygate } from "./keygate.js";

/**
 * Composition root of a serving process (`npm start`, `keygate serve`): config, store, app,
 * listen; on SIGTERM/SIGINT stop taking requests, flush, close. A failure to start ends the
 * process with one line and exit code 1.
 */
export async function serve(): Promise<void> {
  try {
    await start();
  } catch (err) {
    process.stderr.write(
      `keygate: failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(1);
  }
}

async function start(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keygate: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }

  const kg = await createKeygate(config);
  const app = await buildApp(kg);
  const boot = await kg.auth.bootstrap(config.adminUsername, config.adminPassword);
  if (boot.created) {
    const how = boot.generated
      ? `with generated password: ${boot.generated}  (shown once; change it after signing in)`
      : "with the password from KEYGATE_ADMIN_PASSWORD";
    process.stdout.write(`keygate: created admin "${config.adminUsername}" ${how}\n`);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, "stopping: draining requests and flushing call logs");
    try {
      await app.close();
      await kg.close();
      process.exit(0);
    } catch (err) {
      app.log.error({ err }, "unclean stop");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));

  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  process.stdout.write(
    `keygate: listening on http://${config.host}:${port} (database ${redactUrl(config.databaseUrl)}; API reference at /docs)\n`,
  );
}
