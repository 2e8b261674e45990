import { ConfigError, loadConfig, redactUrl } from "./config.js";
import { buildApp } from "./http/app.js";
import { listenForMetrics, metricsListener } from "./http/metrics.js";
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
  const metrics = config.metricsAddress === null ? null : await metricsListener(kg);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, "stopping: draining requests and flushing call logs");
    try {
      await app.close();
      await metrics?.close();
      await kg.close();
      process.exit(0);
    } catch (err) {
      app.log.error({ err }, "unclean stop");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));

  if (metrics !== null && config.metricsAddress !== null) {
    try {
      const url = await listenForMetrics(metrics, config.metricsAddress);
      process.stdout.write(`keygate: metrics on ${url} (no token is asked there)\n`);
    } catch (err) {
      await kg.close();
      throw err;
    }
  }
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "EADDRINUSE" || code === "EACCES") {
      await kg.close();
      const why =
        code === "EADDRINUSE"
          ? "is already in use (another Keygate, or another server)"
          : "may not be used by this user (ports below 1024 need privileges)";
      throw new Error(
        `${config.host}:${config.port} ${why}; set KEYGATE_PORT to a free port (or KEYGATE_HOST to another address), or stop what holds it`,
        { cause: err },
      );
    }
    throw err;
  }
  // The first admin is created only once the server listens: a start that fails prints no
  // password, and the next start still creates the admin and prints one.
  const boot = await kg.auth.bootstrap(config.adminUsername, config.adminPassword);
  if (boot.created) {
    const how = boot.generated
      ? `with generated password: ${boot.generated}  (shown once; change it after signing in)`
      : "with the password from KEYGATE_ADMIN_PASSWORD";
    process.stdout.write(`keygate: created admin "${config.adminUsername}" ${how}\n`);
  } else if (config.adminPassword !== null) {
    process.stdout.write(
      "keygate: KEYGATE_ADMIN_PASSWORD was ignored: users already exist, and it only sets the first admin's password. " +
        "To change a password, run keygate reset-password <username> (or change it in the console)\n",
    );
  }
  // Webhooks are delivered, and scheduled events made, by serving processes only, never by a
  // one-shot command.
  await kg.deliveries.start();
  kg.scheduler.start();
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  process.stdout.write(
    `keygate: listening on http://${config.host}:${port} (database ${redactUrl(config.databaseUrl)}; API reference at /docs)\n`,
  );
}
