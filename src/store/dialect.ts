/** The SQL engines Keygate stores its data in. */
export type Dialect = "sqlite" | "postgres";
