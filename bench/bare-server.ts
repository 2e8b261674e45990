/**
 * Scenario A, the ceiling: bare Fastify answering one GET with a JSON body of the size of
 * Keygate's whoami answer (BENCH_BODY is that answer). No hooks, no plugins, no logging.
 */
import Fastify from "fastify";

const body = JSON.parse(process.env.BENCH_BODY ?? '{"success":true}') as Record<string, unknown>;
const app = Fastify({ logger: false });
app.get("/api/v1/external/whoami", async () => body);

const address = await app.listen({ host: "127.0.0.1", port: Number(process.env.BENCH_PORT ?? 0) });
process.stdout.write(`bare: listening on ${address}\n`);
process.on("SIGTERM", () => {
  void app.close().then(() => process.exit(0));
});
