import { RedisStore } from 'connect-redis';
import type { Request } from 'express';
import type { SessionData } from 'express-session';
import type { Redis } from 'ioredis';
import { AppError, asStoreError, storeUnavailable } from '../errors.js';
import type { SessionCodec } from './codec.js';
import { type Durability, replicated } from './durability.js';
import type { MergePolicy } from './merge.js';
import type { StoreObserver } from './observer.js';
import { adopt, createLoaded, fail, finish, loadedPayload, remember, type StoreCallback, ttlFor } from './snapshot.js';

/**
 * Compare-and-set of one session: writes ARGV[2] with TTL ARGV[3] only if the key still holds
 * ARGV[1]. Returns 1 when written, the current payload when another write came first, and nil
 * when the key is gone: a save never re-creates a session that was destroyed (logout, "log out
 * everywhere", an eviction) or that expired while the request ran.
 */
const CAS = `
local current = redis.call('GET', KEYS[1])
if not current then return false end
if current ~= ARGV[1] then return current end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
`;

/** How many times one save may lose the compare-and-set to other nodes before it gives up (503). */
const MAX_ATTEMPTS = 100;

interface CasRedis extends Redis {
  sessionCas(key: string, expected: string, next: string, ttl: number): Promise<1 | string | null>;
}

/**
 * connect-redis's RedisStore (its calling convention, prefix, SCAN helpers and TTL rule), with
 * these deliberate changes, each tested against a real redis-server (test/store-*.test.ts):
 *
 * 1. Reads extend the idle TTL in the same command (`GETEX key EX idle`) and `touch` sends
 *    nothing for a session without a cookie expiry: one Redis command per unmodified read.
 *    connect-redis reads with GET and express-session then touches with EXPIRE: two.
 * 2. Saves of a loaded session lose nothing and revive nothing: the change this request made is
 *    merged into the stored session (merge.ts) by a compare-and-set (CAS above), retried on
 *    conflict; a save whose session was destroyed meanwhile fails with UNAUTHENTICATED (401) and
 *    writes nothing. Saves on one node are queued per session, so a conflict can only come from
 *    another node. A session the store never loaded (a new login) is written as connect-redis
 *    does, with SET.
 * 3. Every failure of Redis becomes STORE_UNAVAILABLE (503 + Retry-After) through the callback,
 *    or as a rejection when called without one: never a hang, never a silent anonymous session.
 * 4. The payload is the compact codec's (codec.ts), lossless.
 *
 * The list of deviations from connect-redis's and express-session's store contracts, with their
 * reasons, is in docs/store-contract.md. length()/all()/ids()/clear() SCAN the keyspace:
 * nothing in a request path calls them.
 */
export class SharedSessionStore extends RedisStore {
  private readonly queues = new Map<string, { tail: Promise<unknown>; latest?: string }>();
  /** The connection session writes and deletes (and their WAIT) go on: the store's own unless durability names one. */
  private readonly writer: Redis;

  constructor(
    private readonly redis: Redis,
    private readonly opts: {
      prefix: string;
      idleTimeoutS: number;
      codec: SessionCodec;
      observer: StoreObserver;
      merge: MergePolicy;
      /**
       * Acknowledge a write or a delete only once this many replicas have it (Redis WAIT), else
       * 503; absent: do not wait. `connection` carries the writes and their WAIT (which holds it
       * until the replicas answer), so reads on the store's own connection never queue behind a
       * WAIT; without one, the store's connection does.
       */
      durability?: Durability & { connection?: Redis };
    },
  ) {
    // connect-redis's own serializer path is unused (every method that decodes is overridden here).
    super({ client: redis, prefix: opts.prefix, ttl: opts.idleTimeoutS, disableTouch: true });
    this.writer = opts.durability?.connection ?? redis;
    if (!('sessionCas' in this.writer)) this.writer.defineCommand('sessionCas', { numberOfKeys: 1, lua: CAS });
  }

  override async get(sid: string, cb?: StoreCallback<SessionData | null>): Promise<unknown> {
    const done = this.opts.observer.start('get');
    try {
      const raw = await this.redis.getex(this.prefix + sid, 'EX', this.opts.idleTimeoutS);
      done();
      const sess = raw === null ? null : this.opts.codec.parse(raw);
      return finish(null, sess && remember(sess, raw!), cb);
    } catch (err) {
      done(err);
      return finish(storeUnavailable(err), null, cb);
    }
  }

  override createSession(req: Request, sess: SessionData) {
    return createLoaded(sess, this.opts.codec, (data) => super.createSession(req, data));
  }

  override async set(sid: string, sess: SessionData, cb?: StoreCallback<null>): Promise<unknown> {
    const ttl = ttlFor(sess, this.opts.idleTimeoutS);
    if (ttl <= 0) return this.destroy(sid, cb); // its cookie has expired: a delete, counted as one
    const done = this.opts.observer.start('set');
    try {
      const base = loadedPayload(sess);
      if (base === undefined) {
        const raw = this.opts.codec.stringify(sess);
        await this.writer.set(this.prefix + sid, raw, 'EX', ttl);
        await replicated(this.writer, this.opts.durability);
        remember(sess, raw);
      } else {
        await this.serialised(sid, (latest) => this.merge(sid, sess, base, latest ?? base, ttl));
      }
      done();
      return finish(null, null, cb);
    } catch (err) {
      done(err);
      return finish(asStoreError(err), null, cb);
    }
  }

  override async touch(sid: string, sess: SessionData, cb?: StoreCallback<null>): Promise<unknown> {
    if (!sess?.cookie?.expires) return finish(null, null, cb); // the read already extended the TTL
    const done = this.opts.observer.start('touch');
    try {
      await this.redis.expire(this.prefix + sid, Math.max(1, ttlFor(sess, this.opts.idleTimeoutS)));
      done();
      return finish(null, null, cb);
    } catch (err) {
      done(err);
      return finish(storeUnavailable(err), null, cb);
    }
  }

  override async destroy(sid: string, cb?: StoreCallback<null>): Promise<unknown> {
    const done = this.opts.observer.start('destroy');
    try {
      await this.writer.del(this.prefix + sid);
      await replicated(this.writer, this.opts.durability); // a logout a failover could undo is not acknowledged either
      done();
      return finish(null, null, cb);
    } catch (err) {
      done(err);
      return finish(storeUnavailable(err), null, cb);
    }
  }

  override async all(cb?: StoreCallback<SessionData[]>): Promise<unknown> {
    return this.scanning(async () => {
      const keys = await this.allKeys();
      if (keys.length === 0) return [];
      const values = await this.redis.mget(keys);
      const out: SessionData[] = [];
      values.forEach((raw, i) => {
        const sess = raw === null ? null : this.opts.codec.parse(raw);
        if (sess) out.push(Object.assign(sess, { id: keys[i]!.slice(this.prefix.length) })); // an entry that does not decode is skipped, as get() skips it
      });
      return out;
    }, cb);
  }

  override async length(cb?: StoreCallback<number>): Promise<unknown> {
    return this.scanning(async () => (await this.allKeys()).length, cb);
  }

  override async ids(cb?: StoreCallback<string[]>): Promise<unknown> {
    return this.scanning(async () => (await this.allKeys()).map((k: string) => k.slice(this.prefix.length)), cb);
  }

  override async clear(cb?: StoreCallback<null>): Promise<unknown> {
    return this.scanning(async () => {
      const keys = await this.allKeys();
      if (keys.length) await this.redis.del(keys);
      return null;
    }, cb);
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
      const reply = await (this.writer as CasRedis).sessionCas(this.prefix + sid, expected, raw, ttl);
      if (reply === 1) {
        await replicated(this.writer, this.opts.durability);
        adopt(sess, merged, raw);
        return raw;
      }
      if (reply === null) throw new AppError('UNAUTHENTICATED'); // destroyed or expired meanwhile: stays so
      expected = reply; // another node wrote first: merge into what it wrote
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

  /** Every key under the prefix, by SCAN (never on a request path). */
  private async allKeys(): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', this.scanCount);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return [...new Set(keys)]; // SCAN may return a key twice
  }

  private async scanning<T>(fn: () => Promise<T>, cb?: StoreCallback<T>): Promise<T | undefined> {
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      return fail(storeUnavailable(err), cb);
    }
    return finish(null, result, cb);
  }
}
