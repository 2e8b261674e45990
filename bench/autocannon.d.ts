/** The part of autocannon's programmatic API the benchmarks use (the package ships no types). */
declare module "autocannon" {
  export type Request = {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    setupRequest?: (req: Request, context: Record<string, unknown>) => Request | null;
  };

  /**
   * One connection. `Client.setRequests` refuses when pipelining is above 1 (requests may be
   * in flight); before the connection is made, its iterator's own `setRequests` is safe.
   */
  export type Client = {
    requestIterator: { setRequests(requests: Request[]): void };
  };

  export type Options = {
    url: string;
    connections?: number;
    pipelining?: number;
    duration?: number;
    amount?: number;
    timeout?: number;
    overallRate?: number;
    method?: string;
    headers?: Record<string, string>;
    requests?: Request[];
    /** Called with each connection as it is made, before any request is sent. */
    setupClient?: (client: Client) => void;
  };

  export type Histogram = {
    average: number;
    mean: number;
    stddev: number;
    min: number;
    max: number;
    total: number;
    p50: number;
    p90: number;
    p99: number;
    p99_9?: number;
  };

  export type Result = {
    duration: number;
    start: Date;
    finish: Date;
    errors: number;
    timeouts: number;
    non2xx: number;
    resets: number;
    "1xx": number;
    "2xx": number;
    "3xx": number;
    "4xx": number;
    "5xx": number;
    statusCodeStats: Record<string, { count: number }>;
    latency: Histogram;
    requests: Histogram & { sent: number };
    throughput: Histogram;
  };

  export type Instance = {
    stop(): void;
    on(event: "done", cb: (result: Result) => void): void;
    /** Emitted once every connection is set up, when sending begins. */
    on(event: "start", cb: () => void): void;
  };

  function autocannon(opts: Options, cb: (err: Error | null, result: Result) => void): Instance;
  export default autocannon;
}
