import { randomBytes } from "node:crypto";
import { Cluster, type Eviction } from "./cluster/redis.js";
import { FallbackLimiter } from "./ratelimit/fallback.js";
import { RedisLimiter } from "./ratelimit/redis.js";
import { Audit } from "./audit.js";
import { LeakIntake } from "./alerts/leaks.js";
import { readReporterKeyFile } from "./alerts/reporters.js";
import { Alerts } from "./alerts/service.js";
import { SqlAlertRepo } from "./store/alerts.js";
import { AuthService } from "./auth/service.js";
import { TokenService } from "./auth/tokens.js";
import { TwoFactorService } from "./auth/twofactor.js";
import { CallLogWriter } from "./calllog/writer.js";
import { MemoryNonces, type NonceStore, RedisNonces } from "./credentials/nonces.js";
import { isPlain, MasterKeyring, secretBinding, tokenKeyBinding } from "./credentials/secrets.js";
import { TokenAuthority } from "./credentials/tokens.js";
import { SqlSigningKeyStore, SqlTokenLedger } from "./store/credentials.js";
import type { Config } from "./config.js";
import { CachedKeyLookup } from "./keys/cache.js";
import { quotaPlan, type QuotaUsage, quotaWindow } from "./keys/quota.js";
import { KeyService, type StoredKey } from "./keys/service.js";
import { KeyVerifier } from "./keys/verify.js";
import { Metrics } from "./metrics/metrics.js";
import { NasDevices } from "./panel/nas.js";
import { Services } from "./panel/services.js";
import type { StatsRepo } from "./panel/stats.js";
import { Subscribers } from "./panel/subscribers.js";
import { TestData } from "./panel/testdata.js";
import { Transactions } from "./panel/transactions.js";
import { Usage } from "./panel/usage.js";
import type { Limiter } from "./ratelimit/limiter.js";
import { MemoryLimiter } from "./ratelimit/memory.js";
import { type Database, openDatabase } from "./store/database.js";
import { SqlKeyRepo } from "./store/keys.js";
import { ensureLogPartitionsAhead } from "./store/partitions.js";
import {
  SqlAuditRepo,
  SqlNasRepo,
  SqlServiceRepo,
  SqlStatsRepo,
  SqlTestDataRepo,
  SqlSubscriberRepo,
  SqlTransactionRepo,
  SqlUsageRepo,
} from "./store/panel.js";
import { SqlTwoFactorRepo } from "./store/twofactor.js";
import { chainAdmittedSince, pruneUsage, USAGE_RETENTION_DAYS } from "./store/usage.js";
import { DeliveryWorker, type DeliveryOptions } from "./events/delivery.js";
import { QuotaEvents } from "./events/quota.js";
import { Scheduler } from "./events/scheduler.js";
import { CallSignals, raiseSignalAlerts } from "./events/signals.js";
import {
  isPlainWebhookSecret,
  WebhookService,
  webhookSecretBinding as webhookBinding,
} from "./events/webhooks.js";
import { SqlWebhookRepo } from "./store/webhooks.js";
import { SqlRefreshTokenRepo, SqlSettings, SqlUserRepo } from "./store/users.js";
import { VERSION } from "./version.js";

export { VERSION };

/** Everything a running Keygate holds, wired once. The HTTP app takes this and nothing else. */
export type Keygate = {
  config: Config;
  database: Database;
  auth: AuthService;
  twoFactor: TwoFactorService;
  keys: KeyService;
  keyRepo: SqlKeyRepo;
  verifier: KeyVerifier;
  keyCache: CachedKeyLookup;
  limiter: Limiter;
  callLog: CallLogWriter;
  audit: Audit;
  subscribers: Subscribers;
  services: Services;
  nas: NasDevices;
  transactions: Transactions;
  usage: Usage;
  stats: StatsRepo;
  testData: TestData;
  startedAt: number;
  version: string;
  /** The one clock every time-dependent decision reads; tests replace it. */
  now: () => Date;
  /** The same clock in epoch milliseconds, for the request path. */
  clock: () => number;
  /** Logs through whatever logger the app uses (set once the app exists). */
  warn: (msg: string) => void;
  info: (msg: string) => void;
  /** Redis-backed sharing between instances, when KEYGATE_REDIS_URL is set. */
  cluster: Cluster | null;
  /** Signature nonces seen, per key: in Redis when configured, else in this process. */
  nonces: NonceStore;
  /** Issues and verifies access tokens (OAuth 2.0 client credentials, RFC 9068). */
  tokens: TokenAuthority;
  /** Revoked access tokens and the keys' token counts. */
  tokenLedger: SqlTokenLedger;
  /** The token-signing keys (for a master-key rotation). */
  signingKeys: SqlSigningKeyStore;
  /** Prometheus metrics: the request path adds to plain counters, a scrape reads them. */
  metrics: Metrics;
  /** The console's notifications: `alerts.raise(...)` from any module. */
  alerts: Alerts;
  /** Leak reports from secret scanners, and keys revoked by whoever holds them. */
  leaks: LeakIntake;
  /** Webhook endpoints (`/api/webhooks`). */
  webhooks: WebhookService;
  /** Emits the events of time passing (expiry reminders); serving processes start it. */
  scheduler: Scheduler;
  /** Emits key.new_ip and key.refusals_spike from the call log as it is written. */
  signals: CallSignals;
  /** Emits key.quota_low when a key's quota reaches 80 % and 100 % of a period. */
  quotaEvents: QuotaEvents;
  /** Delivers the outbox to webhook endpoints; a serving process starts it (`serve.ts`). */
  deliveries: DeliveryWorker;
  /** Drops a key from every instance's cache, by id: its next call reads it anew. */
  evictKeyId(id: number): Promise<void>;
  close(): Promise<void>;
};

export type KeygateOptions = {
  now?: () => Date;
  /**
   * For a one-shot command (`keygate keys …`) rather than a serving process: no call-log
   * timer or pruning, and no eviction subscription (it publishes evictions, it caches no keys).
   */
  oneShot?: boolean;
  /** The webhook delivery worker's timing (retry schedule, poll interval, lease), for tests. */
  delivery?: Partial<
    Pick<
      DeliveryOptions,
      "retryScheduleMs" | "pollMs" | "leaseMs" | "timeoutMs" | "disableAfterMs" | "jitter" | "batch"
    >
  >;
};

/** What a key's quota stands at now, as the limiter counts it; null without a quota. */
async function quotaUsage(limiter: Limiter, k: StoredKey, now: number): Promise<QuotaUsage | null> {
  const plan = quotaPlan(k.quota, k.quotaRootId);
  if (plan === null || limiter.peekQuota === undefined) return null;
  const w = quotaWindow(k.id, plan, now);
  const q = await limiter.peekQuota(w, now);
  if (q === null) return null;
  return {
    used: q.used,
    remaining: q.remaining,
    period_start: new Date(w.startMs).toISOString(),
    resets_at: new Date(w.endMs).toISOString(),
  };
}

/**
 * How long a verified key stays cached in a serving process before it is read again: what
 * bounds a revocation's reach when an eviction cannot travel. With several instances a lost
 * eviction channel leaves only this, hence shorter.
 */
export function keyCacheTtlMs(config: Pick<Config, "redisUrl">): number {
  return config.redisUrl ? 10_000 : 30_000;
}

export async function createKeygate(config: Config, opts: KeygateOptions = {}): Promise<Keygate> {
  const now = opts.now ?? (() => new Date());
  const clock = opts.now ? () => now().getTime() : Date.now;
  const database = await openDatabase(config.databaseUrl, {
    sqliteSynchronous: config.sqliteSynchronous,
  });
  const { db } = database;
  const settings = new SqlSettings(db);
  const secret =
    config.jwtSecret ??
    (await settings.getOrSet("jwt_secret", randomBytes(48).toString("base64url")));

  const log = {
    warn: (msg: string) => kg.warn(msg),
    info: (msg: string) => kg.info(msg),
  };
  const audit = new Audit(new SqlAuditRepo(db), now);
  const users = new SqlUserRepo(db);
  // Opens what the current master key or an earlier one (during a rotation) sealed.
  const keyring =
    config.masterKey === null
      ? null
      : new MasterKeyring(config.masterKey, config.masterKeyPrevious);
  // Signing secrets are sealed to the key they belong to (its hash), under the master key.
  const keyRepo = new SqlKeyRepo(
    database,
    keyring === null ? null : (sealed, keyHash) => keyring.open(sealed, secretBinding(keyHash)),
  );
  const keyCache = new CachedKeyLookup({
    load: (hash) => keyRepo.loadRecord(hash),
    loadHash: (id) => keyRepo.hashById(id),
    ttlMs: keyCacheTtlMs(config),
  });
  const memory = new MemoryLimiter(10_000, clock);
  // A quota counter this process (or an emptied Redis) lacks starts from the rollups' count
  // of its roll chain (every key counted under the chain's first key). Periods start and end
  // on UTC hours, as the rollups' rows do.
  const quotaSeed = (rootId: number, start: number, end: number) =>
    chainAdmittedSince(db, rootId, Math.floor(start / 3_600_000), Math.ceil(end / 3_600_000));
  memory.seedQuotasFrom(quotaSeed, log.warn, clock);
  let limiter: Limiter = memory;
  let cluster: Cluster | null = null;
  if (config.redisUrl) {
    const c = new Cluster({
      url: config.redisUrl,
      namespace: await settings.getOrSet("cluster_namespace", randomBytes(6).toString("hex")),
      onEviction: (e) => (e.kind === "all" ? keyCache.clear() : keyCache.evict(e.hash)),
      onResync: () => keyCache.clear(),
      listen: !opts.oneShot,
      ...log,
    });
    cluster = c;
    limiter = new FallbackLimiter({
      shared: new RedisLimiter(c.redis, c.keyPrefix, c.epochKey, quotaSeed, log.warn),
      local: memory,
      available: () => c.available,
      ...log,
    });
  }
  /** Drops cached keys here and, through the cluster, on every other instance. */
  const evict = async (e: Eviction) => {
    if (e.kind === "all") keyCache.clear();
    else keyCache.evict(e.hash);
    await cluster?.publish(e);
  };

  const evictKeyId = async (id: number) => {
    const hash = await keyCache.hashOf(id);
    if (hash !== null) await evict({ kind: "key", hash });
  };

  const kg: Keygate = {
    config,
    database,
    keyRepo,
    keyCache,
    limiter,
    audit,
    startedAt: Date.now(),
    now,
    clock,
    version: VERSION,
    warn: (msg: string) => {
      process.stderr.write(`${msg}\n`);
    },
    info: (msg: string) => {
      process.stdout.write(`${msg}\n`);
    },
    cluster,
    evictKeyId,
  } as Keygate;

  kg.callLog = new CallLogWriter({
    sink: keyRepo,
    onError: (err) => kg.warn(`call log write failed, will retry: ${(err as Error).message}`),
    onDrop: (n) => kg.warn(`call log queue full: dropped ${n} oldest row(s)`),
    onWritten: (batch) => kg.signals.observe(batch),
  });
  const tokens = new TokenService({
    secret: new TextEncoder().encode(secret),
    repo: new SqlRefreshTokenRepo(db),
    now,
  });
  kg.auth = new AuthService({
    users,
    tokens,
    limiter,
    audit,
    // Keys carry their owner's role and standing; any user change invalidates them all.
    onUserChanged: () => evict({ kind: "all" }),
    secondFactor: { verifyAtSignIn: (...args) => kg.twoFactor.verifyAtSignIn(...args) },
    now,
  });
  kg.twoFactor = new TwoFactorService({
    repo: new SqlTwoFactorRepo(db),
    users,
    auth: kg.auth,
    audit,
    endSessions: (userId) => tokens.endAllFor(userId),
    policy: config.requireTwoFactor,
    now,
  });
  kg.keys = new KeyService({
    keys: keyRepo,
    owners: users,
    audit,
    evict: (hash) => evict({ kind: "key", hash }),
    flushUsage: () => kg.callLog.flush(),
    selfService: config.selfServiceKeys,
    requireTwoFactor: config.requireTwoFactor,
    now,
    sealSecret:
      keyring === null ? null : (secret, keyHash) => keyring.seal(secret, secretBinding(keyHash)),
    quotaUsage: (k) => quotaUsage(limiter, k, clock()),
  });
  kg.alerts = new Alerts(new SqlAlertRepo(db), now);
  kg.leaks = new LeakIntake({
    find: (hash) => keyCache.find(hash),
    revoke: (id, leak) => kg.keys.revokeExposed(id, leak),
    flag: (id, leak) => kg.keys.flagExposed(id, leak),
    audit,
    alerts: kg.alerts,
    reporters: config.leakReporterKeys,
    action: config.leakAction,
    ...(config.leakReporterKeysFile === null
      ? {}
      : { reload: () => readReporterKeyFile(config.leakReporterKeysFile as string) }),
    clock,
    warn: (msg) => kg.warn(msg),
  });
  const localNonces = new MemoryNonces();
  kg.nonces =
    cluster === null
      ? localNonces
      : new RedisNonces(
          cluster.redis,
          cluster.noncePrefix,
          localNonces,
          () => (cluster as Cluster).available,
        );
  // Token-signing keys are sealed under the master key when there is one; without one they
  // are kept as the session-signing secret is (decision 0016).
  kg.signingKeys = new SqlSigningKeyStore(db);
  kg.tokenLedger = new SqlTokenLedger(db);
  kg.tokens = new TokenAuthority({
    store: kg.signingKeys,
    clock,
    ttlS: config.tokenTtlS,
    ...(keyring === null
      ? {}
      : {
          seal: (json: string, kid: string) => keyring.seal(json, tokenKeyBinding(kid)),
          // A key made before the master key was set is plain JSON until it is resealed.
          open: (stored: string, kid: string) =>
            isPlain(stored) ? stored : keyring.open(stored, tokenKeyBinding(kid)),
        }),
  });
  kg.quotaEvents = new QuotaEvents({
    database,
    now,
    warn: (msg) => kg.warn(msg),
    onEvents: () => kg.deliveries.nudge(),
  });
  kg.verifier = new KeyVerifier({
    lookup: keyCache,
    tokens: kg.tokens,
    limiter,
    quotaLow: (key, window, quota) => kg.quotaEvents.observe(key, window, quota),
    defaultRateLimit: config.keyRateLimit,
    failedAttemptLimit: config.failedKeyLimit,
    ...(cluster
      ? {
          staleAfter: (epoch: number, generation: string | undefined) =>
            (cluster as Cluster).staleAfter(epoch, generation),
        }
      : {}),
  });
  const serviceRepo = new SqlServiceRepo(db);
  const subscriberRepo = new SqlSubscriberRepo(db);
  kg.services = new Services(serviceRepo, audit, now);
  kg.subscribers = new Subscribers(subscriberRepo, serviceRepo, users, audit, now);
  kg.nas = new NasDevices(new SqlNasRepo(db), audit, now);
  kg.transactions = new Transactions(new SqlTransactionRepo(db), subscriberRepo, now);
  kg.usage = new Usage(new SqlUsageRepo(db), kg.subscribers, now);
  kg.stats = new SqlStatsRepo(db);
  kg.testData = new TestData(new SqlTestDataRepo(db), audit);
  // Webhook signing secrets are sealed under the master key when there is one, bound to their
  // endpoint; without one they are kept as given (as token-signing keys are, decision 0016).
  const webhookRepo = new SqlWebhookRepo(db, database.dialect);
  kg.deliveries = new DeliveryWorker({
    repo: webhookRepo,
    now,
    allowPrivate: config.webhookAllowPrivate,
    singleProcess: database.dialect === "sqlite",
    secretsOf: (w, at) => {
      const open = (stored: string) =>
        isPlainWebhookSecret(stored) || keyring === null
          ? stored
          : keyring.open(stored, webhookBinding(w.id));
      const previous =
        w.previous_secret !== null &&
        w.previous_secret_until !== null &&
        w.previous_secret_until > at.toISOString()
          ? [open(w.previous_secret)]
          : [];
      return [open(w.secret), ...previous];
    },
    warn: (msg) => kg.warn(msg),
    ...opts.delivery,
  });
  // Expiry reminders: one instance a minute (serve.ts starts it).
  kg.scheduler = new Scheduler({
    database,
    now,
    warn: (msg) => kg.warn(msg),
    // Expiry needs no alert of its own: the alerts list computes keys about to expire.
    onEvents: () => kg.deliveries.nudge(),
  });
  // New addresses and refusal spikes, read off the call log as it is written.
  kg.signals = new CallSignals({
    database,
    now,
    warn: (msg) => kg.warn(msg),
    onEvents: (events) => {
      kg.deliveries.nudge();
      void raiseSignalAlerts(kg.alerts, events).catch((err: unknown) =>
        kg.warn(`alerts of new addresses and spikes not raised: ${(err as Error).message}`),
      );
    },
  });
  kg.webhooks = new WebhookService({
    repo: webhookRepo,
    audit,
    selfService: config.selfServiceKeys,
    allowPrivate: config.webhookAllowPrivate,
    now,
    seal: (secret, id) => (keyring === null ? secret : keyring.seal(secret, webhookBinding(id))),
    nudge: () => kg.deliveries.nudge(),
  });
  kg.metrics = new Metrics({
    version: VERSION,
    callLog: kg.callLog,
    keyCache,
    limiter: limiter instanceof FallbackLimiter ? limiter : null,
    database,
    redis: cluster,
  });
  // Each delivery attempt's outcome, counted for keygate_webhook_deliveries_total.
  kg.deliveries.onDelivery = (outcome) => {
    if (outcome === "success") kg.metrics.webhookDelivery("delivered");
    else if (outcome === "failure") kg.metrics.webhookDelivery("failed");
    else if (outcome === "gave_up") kg.metrics.webhookDelivery("gave_up");
  };
  // Read by someone: the registry and the process metrics (GC, event-loop lag) start now.
  if (!opts.oneShot && (config.metricsToken !== null || config.metricsAddress !== null))
    kg.metrics.start();

  let pruner: NodeJS.Timeout | null = null;
  const prune = async () => {
    const before = new Date(now().getTime() - config.logRetentionDays * 86_400_000).toISOString();
    if (database.dialect === "postgres") {
      // The call log's partitions for today and the next few days (src/store/partitions.ts).
      try {
        await ensureLogPartitionsAhead(db, now().getTime());
      } catch (err) {
        kg.warn(`making call log partitions failed: ${(err as Error).message}`);
      }
    }
    try {
      await keyRepo.pruneLogs(before);
    } catch (err) {
      kg.warn(`call log pruning failed: ${(err as Error).message}`);
    }
    try {
      // Usage rollups outlive the call log: a year and more of daily usage (store/usage.ts).
      const days = Math.max(USAGE_RETENTION_DAYS, config.logRetentionDays);
      await pruneUsage(db, Math.floor((now().getTime() - days * 86_400_000) / 3_600_000));
    } catch (err) {
      kg.warn(`usage rollup pruning failed: ${(err as Error).message}`);
    }
    try {
      await webhookRepo.prune(before);
    } catch (err) {
      kg.warn(`webhook delivery pruning failed: ${(err as Error).message}`);
    }
    try {
      await kg.tokenLedger.prune(clock());
      await kg.tokens.prune();
    } catch (err) {
      kg.warn(`pruning expired token records failed: ${(err as Error).message}`);
    }
  };
  if (!opts.oneShot && keyring !== null) {
    // Token-signing keys made while no master key was set are sealed now that one is.
    await kg.signingKeys.resealAll((stored, kid) =>
      isPlain(stored) ? keyring.seal(stored, tokenKeyBinding(kid)) : stored,
    );
  }
  if (!opts.oneShot) {
    await prune();
    pruner = setInterval(prune, 3_600_000);
    pruner.unref();
    kg.callLog.start();
    kg.signals.start();
  }

  kg.close = async () => {
    if (pruner) clearInterval(pruner);
    try {
      await kg.scheduler.stop();
      await kg.deliveries.stop();
      await kg.callLog.stop();
      await kg.signals.stop();
      await kg.quotaEvents.stop();
    } finally {
      await limiter.close?.();
      await cluster?.close();
      await database.close();
    }
  };
  return kg;
}
