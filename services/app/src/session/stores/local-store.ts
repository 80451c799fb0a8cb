import { BaseSessionStore, type BaseStoreOptions, type CasResult } from './base-store.js';

/**
 * Sticky mode's store: this node's own memory. Sessions die with the process, and only the
 * node that created a session knows it; that is the trade-off sticky mode demonstrates.
 *
 * Unlike express-session's MemoryStore it enforces the idle timeout on every read, sweeps
 * expired entries so an abandoned session does not live forever, and stores the same encoded
 * form as the shared store (so no caller can keep a live reference into it). Saves keep the
 * shared store's promises (merge.ts, base-store.ts): a loaded session's save merges its change
 * into the current entry by a compare-and-set that is one synchronous step, and never
 * re-creates an entry that was destroyed.
 *
 * Emits `gone` (sid) whenever an entry ends (destroy, expiry, sweep), so the per-user index
 * forgets it at once instead of holding it until someone lists the user's sessions.
 */
export class LocalSessionStore extends BaseSessionStore {
  private readonly records = new Map<string, { raw: string; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(opts: BaseStoreOptions & { sweepMs?: number }) {
    super(opts);
    this.sweeper = setInterval(() => this.sweep(), opts.sweepMs ?? 30_000).unref();
  }

  get size(): number {
    return this.records.size;
  }

  protected async read(sid: string): Promise<string | null> {
    const entry = this.live(sid);
    if (!entry) return null;
    entry.expiresAt = this.deadline(this.opts.idleTimeoutS); // reading extends the idle timeout, as GETEX does in Redis
    return entry.raw;
  }

  protected async insert(sid: string, raw: string, ttlS: number): Promise<void> {
    this.records.set(sid, { raw, expiresAt: this.deadline(ttlS) });
  }

  /** One synchronous step: nothing else runs between the comparison and the write. */
  protected async compareAndSet(sid: string, expected: string, raw: string, ttlS: number): Promise<CasResult> {
    const current = this.live(sid);
    if (!current || current.raw !== expected) return { written: false, current: current?.raw ?? null };
    this.records.set(sid, { raw, expiresAt: this.deadline(ttlS) });
    return { written: true };
  }

  protected async remove(sid: string): Promise<void> {
    this.end(sid);
  }

  protected override async extend(sid: string, ttlS: number): Promise<void> {
    const entry = this.live(sid);
    if (entry) entry.expiresAt = this.deadline(ttlS);
  }

  protected async entries(): Promise<Array<[string, string]>> {
    return [...this.records.keys()].flatMap((sid) => {
      const entry = this.live(sid);
      return entry ? [[sid, entry.raw] as [string, string]] : [];
    });
  }

  protected override async count(): Promise<number> {
    this.sweep();
    return this.records.size;
  }

  protected async removeAll(): Promise<void> {
    for (const sid of [...this.records.keys()]) this.end(sid);
  }

  /** Ends a session at once (the per-user index's evictions, in the same step as its bookkeeping). */
  end(sid: string): void {
    if (this.records.delete(sid)) this.emit('gone', sid);
  }

  /** True while the session exists and has not expired. */
  has(sid: string): boolean {
    return this.live(sid) !== undefined;
  }

  /** When the session was last read or written, epoch ms (for an idle-timeout session). */
  lastSeen(sid: string): number | undefined {
    const entry = this.live(sid);
    return entry && entry.expiresAt - this.opts.idleTimeoutS * 1000;
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  /** Drops every expired entry (also run every 30 s). */
  sweep(): void {
    const now = this.now();
    for (const [sid, entry] of this.records) if (entry.expiresAt <= now) this.end(sid);
  }

  private live(sid: string): { raw: string; expiresAt: number } | undefined {
    const entry = this.records.get(sid);
    if (entry && entry.expiresAt <= this.now()) {
      this.end(sid);
      return undefined;
    }
    return entry;
  }

  private deadline(ttlS: number): number {
    return this.now() + ttlS * 1000;
  }
}
