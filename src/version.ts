/** Keygate's version, as `keygate --version` and the health check report it. */
export const VERSION = "0.1.0";
