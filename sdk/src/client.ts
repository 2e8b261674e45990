import type { components, operations } from "./api-types.js";
import { errorFrom, KeygateError } from "./errors.js";
import {
  EXTERNAL_PREFIX,
  type Method,
  type QueryValue,
  type RequestBody,
  type RequestQuery,
  type SuccessBody,
} from "./paths.js";
import { keyIdOf, sign } from "./signer.js";
import { type AccessToken, TokenCache } from "./tokens.js";

export type Schemas = components["schemas"];
export type Subscriber = Schemas["Subscriber"];
export type SubscriberWithPassword = Schemas["SubscriberWithPassword"];
export type Service = Schemas["Service"];
export type Nas = Schemas["Nas"];
export type Transaction = Schemas["Transaction"];
export type UsageReport = Schemas["UsageReport"];
export type SystemStats = Schemas["SystemStats"];
export type Health = Schemas["Health"];
export type Whoami = Schemas["Whoami"];
export type Meta = Schemas["Meta"];

type JsonBody<Op> = Op extends { requestBody: { content: { "application/json": infer B } } }
  ? B
  : never;
type Query<Op> = Op extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

export type NewSubscriber = JsonBody<operations["externalCreateSubscriber"]>;
export type SubscriberChanges = JsonBody<operations["externalUpdateSubscriber"]>;
export type NewTransaction = JsonBody<operations["externalCreateTransaction"]>;
export type SubscriberQuery = Query<operations["externalListSubscribers"]>;
export type TransactionQuery = Query<operations["externalListTransactions"]>;
export type UsageQuery = Query<operations["externalGetSubscriberUsage"]>;

/** A page of a list: the records and where they sit (`page`, `per_page`, `total`). */
export type Page<T> = { data: T[]; meta: Meta };

export type KeygateOptions = {
  /** Where Keygate answers, e.g. `https://keygate.example.com` (`/api/v1/external` is added). */
  baseUrl: string;
  /** The API key, `pk_live_…` or `pk_test_…`. */
  key: string;
  /** The key's signing secret (`pks_live_…`): every request is then signed (RFC 9421). */
  signingSecret?: string;
  /**
   * Exchange the key for short-lived access tokens (OAuth 2.0 client credentials) and send
   * `Authorization: Bearer` instead of `X-API-Key`; `scope` narrows the token to some of
   * the key's permissions.
   */
  tokenExchange?: boolean | { scope?: string[] };
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
  /** Retries of a 429/503 answer (default 2). */
  maxRetries?: number;
  /** The longest `Retry-After` waited for, in seconds (default 60); a longer one is thrown. */
  maxRetryDelay?: number;
  /** Sent as User-Agent. */
  userAgent?: string;
};

export type RequestOptions<Q = Record<string, QueryValue | QueryValue[]>, B = unknown> = {
  /** Query parameters; `undefined` and `null` values are left out, arrays repeated. */
  query?: Q;
  /** Sent as JSON. */
  body?: B;
  /** More headers. */
  headers?: Record<string, string>;
  /**
   * Whether this request may be repeated on a 503 although its method is not idempotent
   * (e.g. a transaction with a `reference`, which the server records once).
   */
  idempotent?: boolean;
  signal?: AbortSignal;
};

/** A 2xx answer: its status, headers and parsed JSON body. */
export type RawResponse<T> = {
  status: number;
  headers: Headers;
  requestId: string | null;
  body: T;
};

const IDEMPOTENT = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);
const TOKEN_REFUSALS = new Set(["INVALID_TOKEN", "TOKEN_EXPIRED"]);
const VERSION = "0.1.0";

/**
 * A client of Keygate's external surface (/api/v1/external). Every call authenticates with
 * the key (or a token exchanged for it), is signed when a signing secret is given, waits
 * out `Retry-After` on 429/503 where that is safe, and turns refusals into `KeygateError`s.
 */
export class Keygate {
  readonly baseUrl: string;
  private readonly key: string;
  private readonly secret: string | undefined;
  private readonly doFetch: typeof fetch;
  private readonly maxRetries: number;
  private readonly maxRetryDelay: number;
  private readonly userAgent: string;
  private readonly tokens: TokenCache | null;
  private readonly scope: string[] | undefined;

  constructor(options: KeygateOptions) {
    if (!options.baseUrl) throw new TypeError("Keygate: baseUrl is required");
    if (!options.key) throw new TypeError("Keygate: key is required");
    // The server root: a trailing slash or /api/v1/external given by habit is dropped.
    let base = options.baseUrl;
    while (base.endsWith("/")) base = base.slice(0, -1);
    if (base.endsWith(EXTERNAL_PREFIX)) base = base.slice(0, -EXTERNAL_PREFIX.length);
    this.baseUrl = base;
    this.key = options.key;
    this.secret = options.signingSecret;
    this.doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.maxRetries = options.maxRetries ?? 2;
    this.maxRetryDelay = options.maxRetryDelay ?? 60;
    this.userAgent = options.userAgent ?? `keygate-sdk/${VERSION}`;
    const exchange = options.tokenExchange;
    this.scope = typeof exchange === "object" ? exchange.scope : undefined;
    this.tokens = exchange ? new TokenCache(() => this.exchangeToken()) : null;
  }

  /**
   * A request to the external surface, `path` relative to /api/v1/external ("/subscribers",
   * "/subscribers/42"). Resolves to the answer's JSON body (`{ success, data, meta? }`),
   * typed from the OpenAPI document for the paths it describes; throws a `KeygateError`.
   */
  async request<M extends Method, P extends string>(
    method: M,
    path: P,
    options: RequestOptions<RequestQuery<M, P>, RequestBody<M, P>> = {},
  ): Promise<SuccessBody<M, P>> {
    return (await this.raw(method, path, options)).body;
  }

  /** `request`, with the answer's status and headers. */
  async raw<M extends Method, P extends string>(
    method: M,
    path: P,
    options: RequestOptions<RequestQuery<M, P>, RequestBody<M, P>> = {},
  ): Promise<RawResponse<SuccessBody<M, P>>> {
    if (!path.startsWith("/")) throw new TypeError(`Keygate: path "${path}" must start with /`);
    const url = this.urlOf(path, options.query as Record<string, QueryValue | QueryValue[]>);
    const body =
      options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body), "utf8");
    const res = await this.send(method, url, {
      body,
      contentType: body === undefined ? undefined : "application/json",
      headers: options.headers,
      idempotent: options.idempotent ?? IDEMPOTENT.has(method),
      signal: options.signal,
      bearer: true,
    });
    const text = method === "HEAD" ? "" : await res.text();
    let parsed: unknown = null;
    if (text !== "") {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new KeygateError({
          status: res.status,
          code: "UNEXPECTED_RESPONSE",
          message: `${method} ${url} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`,
          requestId: res.headers.get("x-request-id"),
          method,
          url,
        });
      }
    }
    return {
      status: res.status,
      headers: res.headers,
      requestId: res.headers.get("x-request-id"),
      body: parsed as SuccessBody<M, P>,
    };
  }

  /** The calling key as Keygate sees it: permissions, environment, owner, client IP. */
  async whoami(): Promise<Whoami> {
    return (await this.request("GET", "/whoami")).data;
  }

  /** The health report (needs no key). */
  async health(): Promise<Health> {
    return (await this.request("GET", "/system/health")).data;
  }

  async stats(): Promise<SystemStats> {
    return (await this.request("GET", "/system/stats")).data;
  }

  readonly subscribers = {
    list: async (query: SubscriberQuery = {}): Promise<Page<Subscriber>> => {
      const { data, meta } = await this.request("GET", "/subscribers", { query });
      return { data, meta };
    },
    get: async (id: number): Promise<Subscriber> =>
      (await this.request("GET", `/subscribers/${id}`)).data,
    getByUsername: async (username: string): Promise<Subscriber> =>
      (await this.request("GET", `/subscribers/by-username/${encodeURIComponent(username)}`)).data,
    /** `password: "auto-generate"` has the server generate one, returned once as `password`. */
    create: async (body: NewSubscriber): Promise<SubscriberWithPassword> =>
      (await this.request("POST", "/subscribers", { body })).data,
    update: async (id: number, changes: SubscriberChanges): Promise<SubscriberWithPassword> =>
      (await this.request("PUT", `/subscribers/${id}`, { body: changes })).data,
    delete: async (id: number): Promise<void> => {
      await this.request("DELETE", `/subscribers/${id}`);
    },
    suspend: async (id: number): Promise<Subscriber> =>
      (await this.request("POST", `/subscribers/${id}/suspend`)).data,
    activate: async (id: number): Promise<Subscriber> =>
      (await this.request("POST", `/subscribers/${id}/activate`)).data,
    usage: async (id: number, query: UsageQuery = {}): Promise<UsageReport> =>
      (await this.request("GET", `/subscribers/${id}/usage`, { query })).data,
  };

  readonly services = {
    list: async (): Promise<Service[]> => (await this.request("GET", "/services")).data,
    get: async (id: number): Promise<Service> =>
      (await this.request("GET", `/services/${id}`)).data,
  };

  readonly nas = {
    list: async (): Promise<Nas[]> => (await this.request("GET", "/nas")).data,
    get: async (id: number): Promise<Nas> => (await this.request("GET", `/nas/${id}`)).data,
  };

  readonly transactions = {
    list: async (query: TransactionQuery = {}): Promise<Page<Transaction>> => {
      const { data, meta } = await this.request("GET", "/transactions", { query });
      return { data, meta };
    },
    get: async (id: number): Promise<Transaction> =>
      (await this.request("GET", `/transactions/${id}`)).data,
    /**
     * Records a transaction. With a `reference` the server records it once however often it
     * is sent (a repeat answers the first), so such a call is also retried on a 503.
     */
    create: async (body: NewTransaction): Promise<Transaction> =>
      (
        await this.request("POST", "/transactions", {
          body,
          idempotent: body.reference !== undefined,
        })
      ).data,
  };

  /** The current access token (token exchange only): the cached one, or a new one. */
  async accessToken(): Promise<string> {
    if (!this.tokens) throw new TypeError("Keygate: accessToken() needs tokenExchange");
    return this.tokens.get();
  }

  private urlOf(path: string, query?: Record<string, QueryValue | QueryValue[]>): string {
    const url = new URL(`${this.baseUrl}${EXTERNAL_PREFIX}${path}`);
    for (const [name, value] of Object.entries(query ?? {})) {
      for (const v of Array.isArray(value) ? value : [value]) {
        if (v !== undefined && v !== null) url.searchParams.append(name, String(v));
      }
    }
    return url.href;
  }

  /** POST /oauth/token: client credentials, the key's prefix and the key by HTTP Basic. */
  private async exchangeToken(): Promise<AccessToken> {
    const form = new URLSearchParams({ grant_type: "client_credentials" });
    if (this.scope && this.scope.length > 0) form.set("scope", this.scope.join(" "));
    const body = Buffer.from(form.toString(), "utf8");
    // RFC 6749 §2.3.1: each of client_id and client_secret form-encoded, then Basic.
    const basic = Buffer.from(
      `${encodeURIComponent(keyIdOf(this.key))}:${encodeURIComponent(this.key)}`,
    ).toString("base64");
    const url = this.urlOf("/oauth/token");
    const res = await this.send("POST", url, {
      body,
      contentType: "application/x-www-form-urlencoded",
      headers: { authorization: `Basic ${basic}` },
      // Minting a token changes nothing a retry could double.
      idempotent: true,
      bearer: false,
    });
    const token = (await res.json()) as AccessToken;
    if (typeof token.access_token !== "string" || typeof token.expires_in !== "number") {
      throw new KeygateError({
        status: res.status,
        code: "UNEXPECTED_RESPONSE",
        message: `POST ${url} answered without access_token and expires_in`,
        requestId: res.headers.get("x-request-id"),
      });
    }
    return token;
  }

  /**
   * Sends one request, with retries: a 429 or 503 is waited out (`Retry-After`, else a short
   * backoff) and sent again, up to maxRetries, when the method is idempotent or the answer is
   * a 429 (refused before anything was done); a refused access token is replaced once. Each
   * attempt is authenticated and signed anew: a nonce is never sent twice.
   */
  private async send(
    method: string,
    url: string,
    o: {
      body: Uint8Array | undefined;
      contentType: string | undefined;
      headers: Record<string, string> | undefined;
      idempotent: boolean;
      signal?: AbortSignal | undefined;
      /** Authenticate with the access token when token exchange is on (else X-API-Key). */
      bearer: boolean;
    },
  ): Promise<Response> {
    let retries = 0;
    let tokenReplaced = false;
    for (;;) {
      const headers: Record<string, string> = {
        accept: "application/json",
        "user-agent": this.userAgent,
        ...o.headers,
      };
      if (o.contentType) headers["content-type"] = o.contentType;
      let token: string | null = null;
      if (o.bearer && this.tokens) {
        token = await this.tokens.get();
        headers.authorization = `Bearer ${token}`;
      } else if (o.bearer) {
        headers["x-api-key"] = this.key;
      }
      if (this.secret !== undefined) {
        const signed = sign({ method, url, body: o.body, key: this.key, secret: this.secret });
        headers["signature-input"] = signed["Signature-Input"];
        headers.signature = signed.Signature;
        if (signed["Content-Digest"]) headers["content-digest"] = signed["Content-Digest"];
      }

      const res = await this.doFetch(url, {
        method,
        headers,
        body: o.body,
        signal: o.signal,
        redirect: "manual",
      });
      if (res.ok) return res;

      const error = await errorFrom(res, { method, url });
      if (
        token !== null &&
        !tokenReplaced &&
        res.status === 401 &&
        TOKEN_REFUSALS.has(error.code)
      ) {
        // The token expired early or was revoked: the request was refused, so send it again
        // once with a new token.
        this.tokens?.invalidate(token);
        tokenReplaced = true;
        continue;
      }
      const retryable =
        (res.status === 429 || res.status === 503) &&
        (o.idempotent || res.status === 429) &&
        retries < this.maxRetries;
      if (!retryable) throw error;
      const waitS = error.retryAfter ?? 0.5 * 2 ** retries;
      if (waitS > this.maxRetryDelay) throw error;
      retries++;
      await sleep(waitS * 1000, o.signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
