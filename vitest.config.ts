import { defineConfig } from "vitest/config";

// Integration tests run twice: on SQLite and on the PostgreSQL at 127.0.0.1:5432 (database
// `test`, one fresh schema per harness). Unit tests run once.
const integration = ["test/**/*.test.ts"];
const engineFree = [
  "test/e2e/**",
  "test/console-serving.test.ts",
  "test/cluster.test.ts",
  "test/cli-usage.test.ts",
  "test/doctor.test.ts",
  "test/sdk-package.test.ts",
];
// Several instances share one database only on PostgreSQL.
const postgresOnly = [
  "test/multi-instance.test.ts",
  "test/pg-outage.test.ts",
  "test/webhooks-cluster.test.ts",
  "test/scheduler-cluster.test.ts",
  "test/migrate-schemas.test.ts",
  "test/quotas-cluster.test.ts",
  "test/call-log-partitions.test.ts",
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Two files at a time: most tests wait on real processes, sockets and timers, so two
    // workers on two cores cut the run by about a third. Vitest's default here is one.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["src/**/*.test.ts", "console/src/**/*.test.{ts,tsx}", "sdk/**/*.test.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "sqlite",
          include: integration,
          exclude: postgresOnly,
          env: { KEYGATE_TEST_ENGINE: "sqlite" },
        },
      },
      {
        extends: true,
        test: {
          name: "postgres",
          include: integration,
          exclude: engineFree,
          env: { KEYGATE_TEST_ENGINE: "postgres" },
        },
      },
    ],
  },
});
