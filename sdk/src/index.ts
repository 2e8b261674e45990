/**
 * @keygate/sdk: a typed client of Keygate's external API (/api/v1/external).
 *
 *   const kg = new Keygate({ baseUrl: "https://keygate.example.com", key: process.env.KEYGATE_KEY });
 *   const me = await kg.whoami();
 *   const { data, meta } = await kg.subscribers.list({ status: "active" });
 */
export * from "./client.js";
export * from "./errors.js";
export {
  contentDigest,
  keyIdOf,
  newNonce,
  sign,
  type SignatureHeaders,
  type SignInput,
} from "./signer.js";
export type { AccessToken } from "./tokens.js";
export type {
  ExternalPath,
  ExternalPaths,
  Method,
  RequestBody,
  RequestQuery,
  SuccessBody,
} from "./paths.js";
export type { components, operations, paths } from "./api-types.js";
