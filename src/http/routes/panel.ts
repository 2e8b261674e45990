import type { FastifyPluginAsync } from "fastify";
import type { Keygate } from "../../keygate.js";
import { decimalIds } from "../input.js";
import type { Surface } from "./common.js";
// Imported in the order of their components in the OpenAPI documents: each module names its
// components as it loads.
import { subscriberRoutes } from "./subscribers.js";
import { serviceRoutes } from "./services.js";
import { nasRoutes } from "./nas.js";
import { transactionRoutes } from "./transactions.js";
import { usageRoutes } from "./usage.js";
import { statsRoutes } from "./stats.js";

/** In the order of their paths in the OpenAPI documents. */
const RESOURCES = [
  subscriberRoutes,
  usageRoutes,
  serviceRoutes,
  nasRoutes,
  transactionRoutes,
  statsRoutes,
];

/**
 * The panel's resources. Registered on both surfaces: the same handlers serve people and
 * keys; the surface only decides authentication, the error envelope and which writes exist.
 */
export function panelRoutes(kg: Keygate, surface: Surface): FastifyPluginAsync {
  return async (app) => {
    // The JWT surface checks ids for all its routes; the external surface's are these.
    if (surface === "external") app.addHook("preValidation", decimalIds);
    for (const routes of RESOURCES) await app.register(routes(kg, surface));
  };
}
