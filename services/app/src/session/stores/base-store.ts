import type { Request } from 'express';
import { Store, type SessionData } from 'express-session';
import { AppError, asStoreError, storeUnavailable } from '../../errors.js';
import type { SessionCodec } from './codec.js';
import type { MergePolicy } from './merge.js';
import type { StoreObserver, StoreOp } from './observer.js';
import { adopt, createLoaded, loadedPayload, remember, type StoreCallback, ttlFor } from './snapshot.js';

/** How many times one save may lose the compare-and-set to other nodes before it gives up (503). */
const MAX_ATTEMPTS = 100;

export interface BaseStoreOptions {
  idleTimeoutS: number;
  codec: SessionCodec;
  observer: StoreObserver;
  merge: MergePolicy;
  /** The clock, epoch ms (tests of the memory store move it). */
  now?: () => number;
}

/** What a compare-and-set found: written, the payload another write left (merge into it), or the session gone. */
export type CasResult = { written: true } | { written: false; current: string | null };

/**
 * What every session store here shares, whatever it keeps the sessions in (Redis, PostgreSQL,
 * this node's memory): the store contract of docs/store-contract.md, written once.
 *
 * - Every method works both ways: given a callback it calls it once, with the error or the result,
 *   and returns nothing; without one it returns a promise. It never throws synchronously, never
 *   both rejects and calls back, and never calls back twice (a callback that throws is the
 *   caller's error: it is rethrown outside the store, not fed back into the callback).
 * - A save of a loaded session is a delta (merge.ts) applied by the store's compare-and-set,
 *   retried on conflict; a session destroyed (or expired) meanwhile stays so (401). Saves of one
 *   session on this node are queued, each starting from what the previous one stored, so a
 *   conflict can only come from another node.
 * - get, set, touch (when it does something) and destroy report to the observer (metrics).
 * - Failures of the backing store are STORE_UNAVAILABLE (503 + Retry-After); errors already in the
 *   catalogue (UNAUTHENTICATED, VALIDATION from the merge) pass as they are.
 *
 * A store supplies the primitives below, each one statement or command of its backend.
 */
export abstract class BaseSessionStore extends Store {
  private readonly queues = new Map<string, { tail: Promise<unknown>; latest?: string }>();

  protected constructor(protected readonly opts: BaseStoreOptions) {
    super();
  }

  /** The payload stored for `sid` (extending its idle expiry, as the store does on a read), or null. */
  protected abstract read(sid: string): Promise<string | null>;
  /** Writes a session the store never loaded (a new login), as it is, for `ttlS` seconds. */
  protected abstract insert(sid: string, raw: string, ttlS: number, sess: SessionData): Promise<void>;
  /** Writes `raw` only if `sid` still holds `expected`; never re-creates a session that is gone. */
  protected abstract compareAndSet(sid: string, expected: string, raw: string, ttlS: number, merged: SessionData): Promise<CasResult>;
  protected abstract remove(sid: string): Promise<void>;
  /** Extends a session whose cookie has an expiry; absent where reads extend it already (PostgreSQL). */
  protected extend?(sid: string, ttlS: number): Promise<void>;
  /** Every live session's id and payload. */
  protected abstract entries(): Promise<Array<[sid: string, raw: string]>>;
  protected abstract removeAll(): Promise<void>;
  /** The live sessions' ids (a store overrides it when it lists them more cheaply than entries()). */
  protected async sessionIds(): Promise<string[]> {
    return (await this.entries()).map(([sid]) => sid);
  }
  /** The number of live sessions (likewise). */
  protected async count(): Promise<number> {
    return (await this.sessionIds()).length;
  }

  override get(sid: string, cb?: StoreCallback<SessionData | null>): Promise<SessionData | null> | undefined {
    return this.answer(
      this.observed('get', () => this.read(sid)).then((raw) => {
        const sess = raw === null ? null : this.opts.codec.parse(raw);
        return sess && remember(sess, raw!);
      }, unavailable),
      cb,
    );
  }

  override createSession(req: Request, sess: SessionData) {
    return createLoaded(sess, this.opts.codec, (data) => super.createSession(req, data));
  }

  override set(sid: string, sess: SessionData, cb?: StoreCallback<null>): Promise<null> | undefined {
    return this.answer(this.save(sid, sess), cb);
  }

  override touch(sid: string, sess: SessionData, cb?: StoreCallback<null>): Promise<null> | undefined {
    const extend = this.extend?.bind(this);
    // Without a cookie expiry the read already extended the idle expiry: nothing to send.
    if (!extend || !sess?.cookie?.expires) return this.answer(Promise.resolve(null), cb);
    const ttl = Math.max(1, ttlFor(sess, this.opts.idleTimeoutS, this.now()));
    return this.answer(
      this.observed('touch', () => extend(sid, ttl)).then(() => null, unavailable),
      cb,
    );
  }

  override destroy(sid: string, cb?: StoreCallback<null>): Promise<null> | undefined {
    return this.answer(this.removeObserved(sid), cb);
  }

  override all(cb?: StoreCallback<SessionData[]>): Promise<SessionData[]> | undefined {
    const decoded = async () => {
      const out: SessionData[] = [];
      for (const [sid, raw] of await this.entries()) {
        const sess = this.opts.codec.parse(raw);
        if (sess) out.push(Object.assign(sess, { id: sid })); // an entry that does not decode is skipped, as get() skips it
      }
      return out;
    };
    return this.answer(decoded().catch(unavailable), cb);
  }

  ids(cb?: StoreCallback<string[]>): Promise<string[]> | undefined {
    return this.answer(this.sessionIds().catch(unavailable), cb);
  }

  override length(cb?: StoreCallback<number>): Promise<number> | undefined {
    return this.answer(this.count().catch(unavailable), cb);
  }

  override clear(cb?: StoreCallback<null>): Promise<null> | undefined {
    return this.answer(
      this.removeAll().then(() => null, unavailable),
      cb,
    );
  }

  protected now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private async removeObserved(sid: string): Promise<null> {
    await this.observed('destroy', () => this.remove(sid)).catch(unavailable);
    return null;
  }

  private async save(sid: string, sess: SessionData): Promise<null> {
    const ttl = ttlFor(sess, this.opts.idleTimeoutS, this.now());
    if (ttl <= 0) return this.removeObserved(sid); // its cookie has expired: a delete, counted as one
    const base = loadedPayload(sess);
    await this.observed('set', async () => {
      if (base === undefined) {
        const raw = this.opts.codec.stringify(sess);
        await this.insert(sid, raw, ttl, sess);
        remember(sess, raw);
      } else {
        await this.serialised(sid, (latest) => this.merge(sid, sess, base, latest ?? base, ttl));
      }
    }).catch((err: unknown) => {
      throw asStoreError(err);
    });
    return null;
  }

  /** One merged compare-and-set loop; returns the payload now stored. */
  private async merge(sid: string, sess: SessionData, base: string, expected: string, ttl: number): Promise<string> {
    const parse = (raw: string) => this.opts.codec.parse(raw) ?? ({} as SessionData);
    const loaded = parse(base);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const merged = this.opts.merge(parse(expected), loaded, sess);
      const raw = this.opts.codec.stringify({ ...merged, cookie: sess.cookie } as SessionData);
      if (raw === expected) {
        adopt(sess, merged, raw); // nothing changed: nothing to send
        return raw;
      }
      const result = await this.compareAndSet(sid, expected, raw, ttl, merged);
      if (result.written) {
        adopt(sess, merged, raw);
        return raw;
      }
      if (result.current === null) throw new AppError('UNAUTHENTICATED'); // destroyed or expired meanwhile: stays so
      expected = result.current; // another node wrote first: merge into what it wrote
    }
    throw storeUnavailable(new Error(`session write lost the compare-and-set ${MAX_ATTEMPTS} times`));
  }

  /** Runs saves of one session on this node one after another; `latest` is the payload the previous one stored. */
  private serialised(sid: string, write: (latest: string | undefined) => Promise<string>): Promise<string> {
    const queue = this.queues.get(sid) ?? { tail: Promise.resolve() };
    this.queues.set(sid, queue);
    const run = queue.tail.then(() => write(queue.latest));
    const tail = run.then(
      (raw) => {
        queue.latest = raw;
      },
      () => {
        queue.latest = undefined;
      },
    );
    queue.tail = tail;
    void tail.then(() => {
      if (queue.tail === tail) this.queues.delete(sid);
    });
    return run;
  }

  private async observed<T>(op: StoreOp, fn: () => Promise<T>): Promise<T> {
    const done = this.opts.observer.start(op);
    try {
      const result = await fn();
      done();
      return result;
    } catch (err) {
      done(err);
      throw err;
    }
  }

  /**
   * The calling convention: the promise, or (given a callback) nothing, and the callback called
   * once when the promise settles. Should the callback itself throw, that error is the caller's:
   * it surfaces as an uncaught exception, as a throwing callback does in Node's own APIs.
   */
  private answer<T>(result: Promise<T>, cb?: StoreCallback<T>): Promise<T> | undefined {
    if (!cb) return result;
    result
      .then(
        (data) => cb(null, data),
        (err: unknown) => cb(err),
      )
      .catch((err: unknown) =>
        process.nextTick(() => {
          throw err;
        }),
      );
    return undefined;
  }
}

/** Any failure of the backing store is STORE_UNAVAILABLE. */
const unavailable = (err: unknown): never => {
  throw storeUnavailable(err);
};
