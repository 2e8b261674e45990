import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Keygate } from "../../keygate.js";
import { component, errorResponses, Ok } from "../schemas.js";
import type { App } from "../types.js";
import { who } from "./common.js";

const Removed = component(
  "TestDataReset",
  Type.Object(
    {
      subscribers: Type.Integer(),
      transactions: Type.Integer(),
      usage: Type.Integer({ description: "subscriber-days of usage" }),
    },
    { description: "The test rows the reset deleted; no live row is ever touched" },
  ),
);

/** `POST /api/test-data/reset`: an admin wipes the test environment's data to start over. */
export function testDataRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    app.post(
      "/test-data/reset",
      {
        schema: {
          tags: ["test data"],
          security: [{ bearer: [] }],
          summary:
            "Delete every test subscriber, transaction and usage record (admin, audited); keys, call logs and live data stay",
          response: { 200: Ok(Removed), ...errorResponses(false, [401, 403]) },
        },
      },
      async (req) => ({ success: true as const, data: await kg.testData.reset(who(req)) }),
    );
  };
}
