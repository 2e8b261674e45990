import { randomBytes } from "node:crypto";

/**
 * The key holding the generation of the eviction epoch counter at `epochKey`: an id that
 * changes whenever the counter starts again (a Redis restarted empty, flushed, or that
 * lost the key), so that an epoch is only ever compared with epochs of its own generation.
 */
export function generationKey(epochKey: string): string {
  return `${epochKey}:gen`;
}

/**
 * Lua that leaves the eviction epoch in `e` and its generation in `g`, given the Lua
 * expressions naming the two keys and a candidate generation id. A missing counter or a
 * missing generation starts a new generation (the candidate) at epoch 0, atomically, so
 * a counter never starts again under a generation some instance has already seen.
 */
export function readEpochLua(epochKey: string, genKey: string, candidate: string): string {
  return `
local e = redis.call('GET', ${epochKey})
local g = redis.call('GET', ${genKey})
if not e or not g then
  g = ${candidate}
  redis.call('SET', ${genKey}, g)
  if not e then
    e = '0'
    redis.call('SET', ${epochKey}, e)
  end
end`;
}

const PROCESS = randomBytes(9).toString("base64url");
let issued = 0;

/** A generation id no other call, process or Redis has used (no spaces: it rides in messages). */
export function candidateGeneration(): string {
  issued++;
  return `${PROCESS}.${issued.toString(36)}`;
}

/** Out-of-order evictions remembered above the watermark; past this, the next read resyncs. */
const MAX_AHEAD = 1_024;

/**
 * Which evictions this instance has applied, as a watermark: every eviction of
 * `generation` up to `upTo` has been applied here (or the cache was cleared after it).
 * Evictions arrive by message (or are published here) and may arrive out of order; an
 * epoch read from Redis that is newer than the watermark, or of another generation,
 * means one may have been missed, and the cache is cleared.
 */
export class EpochTracker {
  private generation: string | null = null;
  private upTo = 0;
  private readonly ahead = new Set<number>();

  /** `onResync(reset)` must clear the key cache; `reset` says the epoch counter started again. */
  constructor(private readonly onResync: (reset: boolean) => void) {}

  /**
   * The eviction of `epoch` has been applied here (received, or published by this
   * instance). A message without a generation (from an older release) moves nothing:
   * the next read decides.
   */
  applied(epoch: number, generation: string | undefined): void {
    if (generation === undefined) return;
    if (generation !== this.generation) {
      // A generation not seen yet: everything before this eviction may have been missed.
      this.observe(epoch, generation);
      return;
    }
    if (epoch <= this.upTo) return;
    this.ahead.add(epoch);
    this.advance();
    if (this.ahead.size > MAX_AHEAD) this.ahead.clear();
  }

  /**
   * An epoch and generation read from Redis. True when an eviction may have been missed:
   * the cache has then been cleared, and a key already read must be read again.
   * `generation` undefined means the reader could not tell: it is taken as the current one.
   */
  observe(epoch: number, generation: string | undefined = this.generation ?? undefined): boolean {
    if (generation === undefined) return false;
    const same = generation === this.generation;
    if (same && epoch <= this.upTo) return false;
    const reset = !same && this.generation !== null;
    if (!same) {
      this.generation = generation;
      this.ahead.clear();
    }
    this.upTo = epoch;
    for (const e of this.ahead) if (e <= epoch) this.ahead.delete(e);
    this.advance();
    this.onResync(reset);
    return true;
  }

  private advance(): void {
    while (this.ahead.delete(this.upTo + 1)) this.upTo++;
  }

  /** For tests and logs: the generation and watermark applied here. */
  get state(): { generation: string | null; upTo: number } {
    return { generation: this.generation, upTo: this.upTo };
  }
}
