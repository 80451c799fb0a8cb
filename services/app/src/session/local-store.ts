import type { Request } from 'express';
import { Store, type SessionData } from 'express-session';
import { AppError } from '../errors.js';
import type { SessionCodec } from './codec.js';
import type { MergePolicy } from './merge.js';
import type { StoreObserver } from './observer.js';
import { adopt, createLoaded, finish, loadedPayload, remember, type StoreCallback, ttlFor } from './snapshot.js';

/**
 * Sticky mode's store: this node's own memory. Sessions die with the process, and only the
 * node that created a session knows it; that is the trade-off sticky mode demonstrates.
 *
 * Unlike express-session's MemoryStore it enforces the idle timeout on every read, sweeps
 * expired entries so an abandoned session does not live forever, and stores the same encoded
 * form as the shared store (so no caller can keep a live reference into it). Saves keep the
 * shared store's promises (merge.ts): a loaded session's save merges its change into the
 * current entry in one synchronous step, and never re-creates an entry that was destroyed.
 *
 * Emits `gone` (sid) whenever an entry ends (destroy, expiry, sweep), so the per-user index
 * forgets it at once instead of holding it until someone lists the user's sessions.
 */
export class LocalSessionStore extends Store {
  private readonly entries = new Map<string, { raw: string; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly opts: { idleTimeoutS: number; codec: SessionCodec; observer: StoreObserver; merge: MergePolicy; now?: () => number; sweepMs?: number }) {
    super();
    this.sweeper = setInterval(() => this.sweep(), opts.sweepMs ?? 30_000).unref();
  }

  get size(): number {
    return this.entries.size;
  }

  override get(sid: string, cb?: StoreCallback<SessionData | null>): unknown {
    const done = this.opts.observer.start('get');
    const entry = this.live(sid);
    done();
    if (!entry) return finish(null, null, cb);
    entry.expiresAt = this.deadline(this.opts.idleTimeoutS); // reading extends the idle timeout, as GETEX does in Redis
    const sess = this.opts.codec.parse(entry.raw);
    return finish(null, sess && remember(sess, entry.raw), cb);
  }

  override createSession(req: Request, sess: SessionData) {
    return createLoaded(sess, this.opts.codec, (data) => super.createSession(req, data));
  }

  override set(sid: string, sess: SessionData, cb?: StoreCallback<null>): unknown {
    const ttl = ttlFor(sess, this.opts.idleTimeoutS, this.now());
    if (ttl <= 0) return this.destroy(sid, cb);
    const done = this.opts.observer.start('set');
    try {
      const base = loadedPayload(sess);
      let raw: string;
      if (base === undefined) {
        raw = this.opts.codec.stringify(sess);
      } else {
        const current = this.live(sid);
        if (!current) throw new AppError('UNAUTHENTICATED'); // destroyed or expired meanwhile: stays so
        const parse = (r: string) => this.opts.codec.parse(r) ?? ({} as SessionData);
        const merged = this.opts.merge(parse(current.raw), parse(base), sess);
        raw = this.opts.codec.stringify({ ...merged, cookie: sess.cookie } as SessionData);
        adopt(sess, merged, raw);
      }
      this.entries.set(sid, { raw, expiresAt: this.deadline(ttl) });
      remember(sess, raw);
      done();
      return finish(null, null, cb);
    } catch (err) {
      done(err);
      return finish(err, null, cb);
    }
  }

  override touch(sid: string, sess: SessionData, cb?: StoreCallback<null>): unknown {
    const entry = sess?.cookie?.expires ? this.live(sid) : undefined;
    if (entry) entry.expiresAt = this.deadline(Math.max(1, ttlFor(sess, this.opts.idleTimeoutS, this.now())));
    return finish(null, null, cb);
  }

  override destroy(sid: string, cb?: StoreCallback<null>): unknown {
    const done = this.opts.observer.start('destroy');
    this.drop(sid);
    done();
    return finish(null, null, cb);
  }

  override all(cb?: StoreCallback<SessionData[]>): unknown {
    const out: SessionData[] = [];
    for (const sid of [...this.entries.keys()]) {
      const entry = this.live(sid);
      const sess = entry && this.opts.codec.parse(entry.raw);
      if (sess) out.push(Object.assign(sess, { id: sid }));
    }
    return finish(null, out, cb);
  }

  ids(cb?: StoreCallback<string[]>): unknown {
    return finish(
      null,
      [...this.entries.keys()].filter((sid) => this.live(sid)),
      cb,
    );
  }

  override length(cb?: StoreCallback<number>): unknown {
    this.sweep();
    return finish(null, this.entries.size, cb);
  }

  override clear(cb?: StoreCallback<null>): unknown {
    for (const sid of [...this.entries.keys()]) this.drop(sid);
    return finish(null, null, cb);
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
    for (const [sid, entry] of this.entries) if (entry.expiresAt <= now) this.drop(sid);
  }

  private live(sid: string): { raw: string; expiresAt: number } | undefined {
    const entry = this.entries.get(sid);
    if (entry && entry.expiresAt <= this.now()) {
      this.drop(sid);
      return undefined;
    }
    return entry;
  }

  private drop(sid: string): void {
    if (this.entries.delete(sid)) this.emit('gone', sid);
  }

  private deadline(ttlS: number): number {
    return this.now() + ttlS * 1000;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}
