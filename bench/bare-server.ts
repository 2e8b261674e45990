/**
 * Scenario A, the ceiling: bare Fastify answering one GET with a JSON body of the size of
 * Keygate's whoami answer (BENCH_BODY is that answer). No hooks, no plugins, no logging.
 *
 * With BENCH_COALESCE=1 (scenario A′), one hook: Keygate's own `coalescedWrites`, which holds
 * the answers of an event-loop turn and writes them together at its end (decision 0022). It
 * shows what that alone does to a bare server, apart from what Keygate adds.
 */
import Fastify from "fastify";

const body = JSON.parse(process.env.BENCH_BODY ?? '{"success":true}') as Record<string, unknown>;
const app = Fastify({ logger: false });
if (process.env.BENCH_COALESCE === "1") {
  const { coalescedWrites } = await import("../src/http/transport.js");
  app.addHook(
    "onSend",
    coalescedWrites((err) => process.stderr.write(`${String(err)}\n`)),
  );
}
app.get("/api/v1/external/whoami", async () => body);

const address = await app.listen({ host: "127.0.0.1", port: Number(process.env.BENCH_PORT ?? 0) });
process.stdout.write(`bare: listening on ${address}\n`);
process.on("SIGTERM", () => {
  void app.close().then(() => process.exit(0));
});
