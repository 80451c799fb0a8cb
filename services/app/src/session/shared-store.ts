import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import type { Redis } from 'ioredis';
import { storeUnavailable } from '../errors.js';
import type { SessionCodec } from './codec.js';
import type { StoreObserver } from './observer.js';

type Callback = (err?: unknown, data?: any) => void;

/**
 * connect-redis's RedisStore, with three deliberate changes:
 *
 * 1. Reads extend the idle TTL in the same command (`GETEX key EX idle`) and `touch` is a no-op.
 *    connect-redis reads with GET and express-session then touches with EXPIRE: two commands per
 *    authenticated read. GETEX keeps the same idle-timeout semantics, exactly, in one.
 * 2. The TTL is always the idle timeout (the cookie has no Max-Age, see codec.ts).
 * 3. Every operation is timed and any client error becomes STORE_UNAVAILABLE (503 + Retry-After):
 *    never a hang, never a silent anonymous session.
 *
 * length()/all()/ids()/clear() SCAN the whole keyspace; nothing in this project calls them.
 */
export class SharedSessionStore extends RedisStore {
  constructor(
    private readonly redis: Redis,
    private readonly opts: { prefix: string; idleTimeoutS: number; codec: SessionCodec; observer: StoreObserver },
  ) {
    super({ client: redis, prefix: opts.prefix, ttl: opts.idleTimeoutS, serializer: opts.codec, disableTouch: true });
  }

  override async get(sid: string, cb?: Callback): Promise<any> {
    const done = this.opts.observer.start('get');
    try {
      const raw = await this.redis.getex(this.prefix + sid, 'EX', this.opts.idleTimeoutS);
      done();
      return cb?.(null, raw ? (this.opts.codec.parse(raw) ?? null) : null);
    } catch (err) {
      done(err);
      return cb?.(storeUnavailable(err));
    }
  }

  override set(sid: string, sess: SessionData, cb?: Callback): Promise<any> {
    return super.set(sid, sess, this.observed('set', cb));
  }

  override destroy(sid: string, cb?: Callback): Promise<any> {
    return super.destroy(sid, this.observed('destroy', cb));
  }

  override async touch(_sid: string, _sess: SessionData, cb?: Callback): Promise<any> {
    return cb?.(null); // the read already extended the TTL
  }

  private observed(op: 'set' | 'destroy', cb?: Callback): Callback {
    const done = this.opts.observer.start(op);
    return (err, data) => {
      done(err);
      cb?.(err ? storeUnavailable(err) : null, data);
    };
  }
}
