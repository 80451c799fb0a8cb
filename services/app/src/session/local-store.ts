import { Store, type SessionData } from 'express-session';
import type { SessionCodec } from './codec.js';
import type { StoreObserver } from './observer.js';

type Callback = (err?: unknown, data?: any) => void;

/**
 * Sticky mode's store: this node's own memory. Sessions die with the process, and only the
 * node that created a session knows it; that is the trade-off sticky mode demonstrates.
 *
 * Unlike express-session's MemoryStore it enforces the idle timeout on every read, sweeps
 * expired entries so an abandoned session does not live forever, and stores the same
 * encoded form as the shared store (so no caller can keep a live reference into it).
 */
export class LocalSessionStore extends Store {
  private readonly entries = new Map<string, { raw: string; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly opts: { idleTimeoutS: number; codec: SessionCodec; observer: StoreObserver; now?: () => number }) {
    super();
    this.sweeper = setInterval(() => this.sweep(), 30_000).unref();
  }

  get size(): number {
    return this.entries.size;
  }

  override get(sid: string, cb: Callback): void {
    const done = this.opts.observer.start('get');
    const entry = this.entries.get(sid);
    if (!entry || entry.expiresAt <= this.now()) {
      if (entry) this.entries.delete(sid);
      done();
      return cb(null, null);
    }
    entry.expiresAt = this.deadline(); // reading extends the idle timeout, as GETEX does in Redis
    done();
    cb(null, this.opts.codec.parse(entry.raw) ?? null);
  }

  override set(sid: string, sess: SessionData, cb?: Callback): void {
    const done = this.opts.observer.start('set');
    this.entries.set(sid, { raw: this.opts.codec.stringify(sess), expiresAt: this.deadline() });
    done();
    cb?.(null);
  }

  override touch(_sid: string, _sess: SessionData, cb?: Callback): void {
    cb?.(null);
  }

  override destroy(sid: string, cb?: Callback): void {
    const done = this.opts.observer.start('destroy');
    this.entries.delete(sid);
    done();
    cb?.(null);
  }

  /** True while the session exists and has not expired. */
  has(sid: string): boolean {
    const entry = this.entries.get(sid);
    return entry !== undefined && entry.expiresAt > this.now();
  }

  /** When the session was last read or written, epoch ms. */
  lastSeen(sid: string): number | undefined {
    const entry = this.entries.get(sid);
    return entry && entry.expiresAt - this.opts.idleTimeoutS * 1000;
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const now = this.now();
    for (const [sid, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(sid);
  }

  private deadline(): number {
    return this.now() + this.opts.idleTimeoutS * 1000;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}
