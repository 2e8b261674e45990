import type { Audit } from "../audit.js";
import { AppError, invalid } from "../errors.js";
import { DISPLAY_PREFIX_LENGTH, hashKey, isWellFormedKey } from "../keys/format.js";
import type { KeyRecord } from "../keys/verify.js";
import { type ReporterKey, verifyReport } from "./reporters.js";
import type { Alerts } from "./service.js";

/** One match a scanner reports (GitHub's secret-scanning partner format). */
export type LeakReport = { token: string; type: string; url?: string; source?: string };

/** The answer per reported token, as the scanner expects it. */
export type LeakLabel = {
  token_raw: string;
  token_type: string;
  label: "true_positive" | "false_positive";
};

/** What was done to a key found exposed. */
export type LeakAction = "revoked" | "flagged" | "already_revoked";

export type LeakIntakeOptions = {
  /** The key with this hash, as the verifier reads it (cached), or null. */
  find: (hash: string) => KeyRecord | null | Promise<KeyRecord | null>;
  /**
   * Revokes through the key service (every instance's cache evicted), emitting key.revoked
   * and key.leaked (with `leak`) in the revocation's transaction; false when it already was.
   */
  revoke: (id: number, leak: LeakDetails) => Promise<boolean>;
  /** Emits key.leaked for a key left working (KEYGATE_LEAK_ACTION=flag). */
  flag: (id: number, leak: LeakDetails) => Promise<void>;
  audit: Audit;
  alerts: Alerts;
  /** The scanners' public keys; null when leak reports are not configured. */
  reporters: readonly ReporterKey[] | null;
  /**
   * Reads the keys again (from the file `KEYGATE_LEAK_REPORTER_KEYS` names), for a report
   * signed with a key not listed: a scanner's new key is taken without a restart. At most once
   * a minute; a file that no longer reads keeps the keys there were, with a warning.
   */
  reload?: () => { ok: true; keys: readonly ReporterKey[] } | { ok: false; problem: string };
  clock?: () => number;
  warn?: (msg: string) => void;
  /** What a reported live key gets: revoked, or only flagged. */
  action: "revoke" | "flag";
};

/** Where and by whom a key was found exposed. */
type Found = {
  by: "scanner" | "holder";
  ip: string;
  url: string | null;
  source: string | null;
  tokenType?: string;
  reporter?: string;
};

/** What the key.leaked event says beside the key: what was done, and where it was found. */
export type LeakDetails = {
  action: "revoked" | "flagged";
  reported_by: "scanner" | "holder";
  url: string | null;
  source: string | null;
  token_type?: string;
  key_identifier?: string;
};

const MAX_URL = 2048;
const RELOAD_EVERY_MS = 60_000;
const ANY_KEY = /pk_(live|test)_[0-9a-f]{32}/g;

/**
 * Leak reports from secret scanners, and keys revoked by whoever holds them. The raw token
 * is only ever hashed and compared: it is stored, logged and audited nowhere.
 */
export class LeakIntake {
  private reporters: readonly ReporterKey[] | null;
  private reloadedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: LeakIntakeOptions) {
    this.reporters = o.reporters;
  }

  get configured(): boolean {
    return this.reporters !== null;
  }

  /** The key under `id`, reading the keys again (once a minute at most) when it is not listed. */
  private reporter(id: string): ReporterKey | undefined {
    const known = this.reporters?.find((r) => r.id === id);
    if (known !== undefined || this.o.reload === undefined) return known;
    const now = (this.o.clock ?? Date.now)();
    if (now - this.reloadedAt < RELOAD_EVERY_MS) return undefined;
    this.reloadedAt = now;
    const read = this.o.reload();
    if (!read.ok) {
      this.o.warn?.(
        `leak reports: KEYGATE_LEAK_REPORTER_KEYS ${read.problem}; keeping the keys read before`,
      );
      return undefined;
    }
    this.reporters = read.keys;
    return read.keys.find((r) => r.id === id);
  }

  /**
   * Checks a report's signature (base64 DER ECDSA P-256 over the raw body) with the key its
   * identifier names; throws the refusal to answer when it does not verify.
   */
  authenticate(body: Buffer, keyId: string | undefined, signature: string | undefined): void {
    if (this.reporters === null)
      throw new AppError(
        "NOT_FOUND",
        "this Keygate takes no leak reports: the operator has not set KEYGATE_LEAK_REPORTER_KEYS (the scanner's public keys); POST /api/v1/external/keys/revoke-exposed revokes a key you hold",
      );
    if (
      keyId === undefined ||
      keyId.trim() === "" ||
      signature === undefined ||
      signature.trim() === ""
    )
      throw new AppError(
        "SIGNATURE_REQUIRED",
        "a leak report must be signed: send Github-Public-Key-Identifier (the signing key's identifier) and Github-Public-Key-Signature (base64 DER ECDSA P-256 SHA-256 signature over the raw body)",
      );
    const reporter = this.reporter(keyId.trim());
    if (reporter === undefined)
      throw new AppError(
        "SIGNATURE_INVALID",
        "Github-Public-Key-Identifier names no key this Keygate trusts for leak reports; the operator lists the scanner's keys in KEYGATE_LEAK_REPORTER_KEYS (a key rotated by the scanner must be added there)",
      );
    if (!verifyReport(reporter.key, body, signature.trim()))
      throw new AppError(
        "SIGNATURE_INVALID",
        "Github-Public-Key-Signature does not verify: it must be the base64 DER ECDSA signature (SHA-256) over the body exactly as sent, made with the key Github-Public-Key-Identifier names",
      );
  }

  /** Labels each reported token; a real key is revoked (or flagged), audited and alerted once. */
  async report(
    reports: LeakReport[],
    from: { ip: string; reporter: string },
  ): Promise<LeakLabel[]> {
    const seen = new Map<string, boolean>();
    const labels: LeakLabel[] = [];
    for (const r of reports) {
      let real = seen.get(r.token);
      if (real === undefined) {
        real = await this.one(r, from);
        seen.set(r.token, real);
      }
      labels.push({
        token_raw: r.token,
        token_type: r.type,
        label: real ? "true_positive" : "false_positive",
      });
    }
    return labels;
  }

  /** Revokes the key presented; 400 when it is no key's shape, 404 when no key has it. */
  async revokeExposed(
    value: string,
    ip: string,
  ): Promise<{ key_prefix: string; status: "revoked" | "already_revoked" }> {
    if (!isWellFormedKey(value))
      throw invalid(
        "key",
        "is not a Keygate API key: send the whole key, pk_live_ or pk_test_ and 32 lowercase hex characters",
      );
    const key = await this.o.find(hashKey(value));
    if (key === null)
      throw new AppError("NOT_FOUND", "no Keygate API key has this value: nothing to revoke");
    const found: Found = { by: "holder", ip, url: null, source: null };
    const action = await this.apply(key, "revoke", found);
    await this.exposed(key, action, found);
    return { key_prefix: key.prefix, status: action === "revoked" ? "revoked" : "already_revoked" };
  }

  /** One reported token: whether it is a real key, and if so what is done about it. */
  private async one(r: LeakReport, from: { ip: string; reporter: string }): Promise<boolean> {
    if (!isWellFormedKey(r.token)) return false;
    const key = await this.o.find(hashKey(r.token));
    if (key === null) return false;
    const found: Found = {
      by: "scanner",
      ip: from.ip,
      url: clean(r.url, r.token),
      source: clean(r.source, r.token),
      tokenType: r.type.slice(0, 100),
      reporter: from.reporter.slice(0, 128),
    };
    const action = await this.apply(key, this.o.action, found);
    await this.exposed(key, action, found);
    return true;
  }

  private async apply(
    key: KeyRecord,
    action: "revoke" | "flag",
    found: Found,
  ): Promise<LeakAction> {
    if (key.revokedAt !== null) return "already_revoked";
    const leak = (done: "revoked" | "flagged"): LeakDetails => ({
      action: done,
      reported_by: found.by,
      url: found.url,
      source: found.source,
      ...(found.tokenType === undefined ? {} : { token_type: found.tokenType }),
      ...(found.reporter === undefined ? {} : { key_identifier: found.reporter }),
    });
    if (action === "flag") {
      await this.o.flag(key.id, leak("flagged"));
      return "flagged";
    }
    return (await this.o.revoke(key.id, leak("revoked"))) ? "revoked" : "already_revoked";
  }

  /** The one place a key found exposed is recorded: the audit entry, the alert (and the event). */
  private async exposed(key: KeyRecord, action: LeakAction, found: Found): Promise<void> {
    await this.o.audit.record(
      {
        userId: null,
        username: null,
        via: found.by === "scanner" ? "leak_report" : "exposed_key",
        ip: found.ip,
      },
      "key.leaked",
      { type: "api_key", id: key.id },
      {
        prefix: key.prefix,
        reported_by: found.by,
        url: found.url,
        source: found.source,
        action,
        ...(found.tokenType === undefined ? {} : { token_type: found.tokenType }),
        ...(found.reporter === undefined ? {} : { key_identifier: found.reporter }),
      },
    );
    // A key already revoked is audited, not alerted: it can do no harm.
    if (action === "already_revoked") return;
    // The key.leaked event went out with the revocation (or the flag), in its transaction.
    const place = `${found.url ?? "an undisclosed place"}${found.source ? ` (${found.source})` : ""}`;
    const named = `Key "${key.name}" (${key.prefix}…)`;
    await this.o.alerts.raise({
      kind: "key.leaked",
      severity: "critical",
      title:
        found.by === "holder"
          ? "Exposed key revoked"
          : action === "revoked"
            ? "Leaked key revoked"
            : "Leaked key — still active",
      message:
        found.by === "holder"
          ? `${named} was revoked by someone who presented it, from ${found.ip}: it was exposed; mint a replacement for whoever used it`
          : action === "revoked"
            ? `${named} was found exposed at ${place} and revoked; mint a replacement for whoever used it`
            : `${named} was found exposed at ${place}; it still works (KEYGATE_LEAK_ACTION=flag): roll or revoke it`,
      target: { type: "api_key", id: key.id },
      ownerId: key.ownerId,
      environment: key.environment,
      details: {
        action,
        reported_by: found.by,
        url: found.url,
        source: found.source,
        ip: found.ip,
      },
    });
  }
}

/** A reporter's text, bounded, with any key in it cut to its display prefix. */
function clean(value: string | undefined, token: string): string | null {
  if (value === undefined || value.trim() === "") return null;
  const bounded = value.length > MAX_URL ? `${value.slice(0, MAX_URL)}…` : value;
  return bounded
    .split(token)
    .join(`${token.slice(0, DISPLAY_PREFIX_LENGTH)}…`)
    .replace(ANY_KEY, (k) => `${k.slice(0, DISPLAY_PREFIX_LENGTH)}…`);
}
