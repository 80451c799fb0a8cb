import type { Redis } from 'ioredis';
import { BaseSessionStore, type BaseStoreOptions, type CasResult } from './base-store.js';
import { type Durability, replicated } from './durability.js';

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

/** SCAN's COUNT hint, connect-redis's default. */
const SCAN_COUNT = 100;

interface CasRedis extends Redis {
  sessionCas(key: string, expected: string, next: string, ttl: number): Promise<1 | string | null>;
}

export interface SharedStoreOptions extends BaseStoreOptions {
  prefix: string;
  /**
   * Acknowledge a write or a delete only once this many replicas have it (Redis WAIT), else
   * 503; absent: do not wait. `connection` carries the writes and their WAIT (which holds it
   * until the replicas answer), so reads on the store's own connection never queue behind a
   * WAIT; without one, the store's connection does.
   */
  durability?: Durability & { connection?: Redis };
}

/**
 * Shared mode's store, on ioredis: connect-redis's key layout (prefix + id), TTL rule (the
 * cookie's expiry when it has one, else the idle timeout) and SCAN helpers, with these
 * deliberate changes, each tested against a real redis-server (test/store-*.test.ts):
 *
 * 1. Reads extend the idle TTL in the same command (`GETEX key EX idle`) and `touch` sends
 *    nothing for a session without a cookie expiry: one Redis command per unmodified read.
 *    connect-redis reads with GET and express-session then touches with EXPIRE: two.
 * 2. Saves of a loaded session lose nothing and revive nothing: the compare-and-set above, in the
 *    merge loop every store shares (base-store.ts). A session the store never loaded (a new
 *    login) is written as connect-redis does, with SET.
 * 3. Every failure of Redis becomes STORE_UNAVAILABLE (503 + Retry-After), through the callback
 *    or as a rejection: never a hang, never a silent anonymous session.
 * 4. The payload is the compact codec's (codec.ts), lossless.
 *
 * It does not extend connect-redis's RedisStore: it replaced every one of its methods, and
 * composing the client directly keeps the Redis commands in one place. The list of deviations
 * from connect-redis's and express-session's store contracts, with their reasons, is in
 * docs/store-contract.md. length()/all()/ids()/clear() SCAN the keyspace: nothing in a request
 * path calls them.
 */
export class SharedSessionStore extends BaseSessionStore {
  readonly prefix: string;
  /** The connection session writes and deletes (and their WAIT) go on: the store's own unless durability names one. */
  private readonly writer: Redis;
  private readonly durability: Durability | undefined;

  constructor(
    private readonly redis: Redis,
    opts: SharedStoreOptions,
  ) {
    super(opts);
    this.prefix = opts.prefix;
    this.durability = opts.durability;
    this.writer = opts.durability?.connection ?? redis;
    if (!('sessionCas' in this.writer)) this.writer.defineCommand('sessionCas', { numberOfKeys: 1, lua: CAS });
  }

  protected read(sid: string): Promise<string | null> {
    return this.redis.getex(this.prefix + sid, 'EX', this.opts.idleTimeoutS);
  }

  protected async insert(sid: string, raw: string, ttlS: number): Promise<void> {
    await this.writer.set(this.prefix + sid, raw, 'EX', ttlS);
    await replicated(this.writer, this.durability);
  }

  protected async compareAndSet(sid: string, expected: string, raw: string, ttlS: number): Promise<CasResult> {
    const reply = await (this.writer as CasRedis).sessionCas(this.prefix + sid, expected, raw, ttlS);
    if (reply !== 1) return { written: false, current: reply };
    await replicated(this.writer, this.durability);
    return { written: true };
  }

  protected async remove(sid: string): Promise<void> {
    await this.writer.del(this.prefix + sid);
    await replicated(this.writer, this.durability); // a logout a failover could undo is not acknowledged either
  }

  protected override async extend(sid: string, ttlS: number): Promise<void> {
    await this.redis.expire(this.prefix + sid, ttlS);
  }

  protected async entries(): Promise<Array<[string, string]>> {
    const keys = await this.allKeys();
    if (keys.length === 0) return [];
    const values = await this.redis.mget(keys);
    return keys.flatMap((key, i) => (values[i] == null ? [] : [[key.slice(this.prefix.length), values[i]!] as [string, string]]));
  }

  /** The keys alone: no MGET of every payload. */
  protected override async sessionIds(): Promise<string[]> {
    return (await this.allKeys()).map((key) => key.slice(this.prefix.length));
  }

  protected async removeAll(): Promise<void> {
    const keys = await this.allKeys();
    if (keys.length) await this.redis.del(keys);
  }

  /** Every key under the prefix, by SCAN (never on a request path). */
  private async allKeys(): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', SCAN_COUNT);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return [...new Set(keys)]; // SCAN may return a key twice
  }
}
