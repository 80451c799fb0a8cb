import type { Redis } from 'ioredis';
import { asStoreError, storeUnavailable } from '../../errors.js';
import type { SessionCodec } from '../stores/codec.js';
import { type Durability, replicated } from '../stores/durability.js';
import type { LocalSessionStore } from '../stores/local-store.js';
import { allTags, type KeyLayout, userTag } from '../keys.js';
import type { Settlement } from '../login/login-limiter.js';

/**
 * Which sessions a user has, so they can be listed and ended together ("log out everywhere").
 *
 * Shared mode keeps one sorted set per user in Redis (member: session id, score: creation time),
 * written at login and logout: no SCAN and no keyspace notifications. Each change is one Lua
 * script, atomic with respect to every other node:
 * - at login, members whose session no longer exists (idle-expired, deleted) are pruned before
 *   the cap is applied, so dead entries never count towards it, and only a session that really
 *   existed when it was pushed out is reported (and counted) as evicted;
 * - "log out everywhere" deletes every member's session and the set in one step, so a login
 *   that races it is either ended with the rest or stays listed, never orphaned.
 * The set expires one absolute timeout after the latest login, since no session in it can
 * outlive that, and listing prunes too. Users who never come back are handled by a janitor that
 * needs no SCAN: a sorted set `idx:due` holds each user with the time at which their index must
 * next be checked (a login schedules it one idle timeout ahead). Every node runs `sweep()`
 * periodically: one script takes the users that are due, drops their members whose session is
 * gone, and either reschedules the user for the moment the earliest of their live sessions would
 * expire (its TTL) or, with none left, deletes the index and the schedule. A dead member is thus
 * gone within one sweep interval of its session's expiry, not an absolute timeout later.
 *
 * On one Redis the sessions and the index live in two logical databases (redis.ts), so
 * the scripts SELECT between them; on Redis Cluster both are in db 0 (SELECT 0 is allowed there)
 * and every key a script touches shares the user's hash tag (session/keys.ts), the schedule too
 * (`idx-due:{T}`, one per shard, each swept in turn).
 *
 * Sticky mode keeps the same index in this node's memory, beside the sessions themselves, and
 * forgets an entry as soon as the store drops it (store event `gone`). It knows only this node's
 * sessions: "log out everywhere" there ends the sessions on the node that answers, and says so.
 */
export interface SessionSummary {
  id: string;
  createdAt: number;
  lastSeenAt: number;
  node: string;
}

export interface UserSessionIndex {
  /** Where `endAll` reaches: every node (shared) or the node that answers (sticky). */
  readonly scope: 'cluster' | 'node';
  /**
   * Records a new session; returns the ids of live sessions it evicted (already ended). A login
   * passes its limiter settlement: the Redis index applies it in the same script.
   */
  add(user: string, sid: string, createdAt: number, settle?: Settlement): Promise<string[]>;
  remove(user: string, sid: string): Promise<void>;
  list(user: string): Promise<SessionSummary[]>;
  /** Ends every session of the user; returns how many live sessions there were (null: not counted, as for stateless tokens). */
  endAll(user: string): Promise<number | null>;
}

interface IndexOptions {
  maxPerUser: number;
  /** Key layout (keys.ts): `databases` on one Redis, `slots` on Redis Cluster. */
  layout: KeyLayout;
  idleTimeoutS: number;
  absoluteTimeoutS: number;
  codec: Pick<SessionCodec, 'parse'>;
  /**
   * REDIS_WAIT_REPLICAS (durability.ts): a login's index entry (with the sessions its cap evicted)
   * and "log out everywhere" are acknowledged only once replicas have them, as the session writes
   * are: else a failover could bring back sessions that were ended, or lose the entry "log out
   * everywhere" needs to find a session. The WAIT goes on the aux connection that ran the script.
   */
  durability?: Durability;
}

// KEYS[1] index, KEYS[2] the schedule (idx-due), then login-limiter counters to settle (ARGV[8] of
// them to delete, the rest to decrement); ARGV: sid, createdAt, maxPerUser, ttlS, sessionsDb, auxDb,
// sessionPrefix, clearCount, when the user's index is next due (ms), user. Every key is in KEYS but
// the members' session keys, which only the index knows: they share its hash tag (keys.ts).

// Returns the ids evicted while alive.
const ADD = `
local idx, sid = KEYS[1], ARGV[1]
local clear = tonumber(ARGV[8] or '0')
for i = 3, #KEYS do
  if i - 2 <= clear then
    redis.call('DEL', KEYS[i])
  elseif redis.call('DECR', KEYS[i]) < 0 then
    -- as login-limiter.ts's SETTLE: a release never leaves a counter below zero, nor one without its window
    if redis.call('PTTL', KEYS[i]) == -1 then redis.call('DEL', KEYS[i]) else redis.call('INCR', KEYS[i]) end
  end
end
local sessionsDb, auxDb, prefix = ARGV[5], ARGV[6], ARGV[7]
redis.call('ZADD', idx, ARGV[2], sid)
local members = redis.call('ZRANGE', idx, 0, -1)
redis.call('SELECT', sessionsDb)
-- One EXISTS over every other member's session; only when it counts fewer than there are members
-- is each checked on its own, to name the dead (a full index of 20: 1 command, not 19).
local others = {}
for _, m in ipairs(members) do
  if m ~= sid then others[#others + 1] = prefix .. m end
end
local dead = {}
if #others > 0 and redis.call('EXISTS', unpack(others)) < #others then
  for _, m in ipairs(members) do
    if m ~= sid and redis.call('EXISTS', prefix .. m) == 0 then dead[#dead + 1] = m end
  end
end
redis.call('SELECT', auxDb)
if #dead > 0 then redis.call('ZREM', idx, unpack(dead)) end
local evicted = {}
-- The index now holds exactly the members read above (sid among them) less the dead removed: no ZCARD needed.
local over = #members - #dead - tonumber(ARGV[3])
if over > 0 then
  local popped = redis.call('ZPOPMIN', idx, over)
  redis.call('SELECT', sessionsDb)
  for i = 1, #popped, 2 do
    if redis.call('DEL', prefix .. popped[i]) == 1 then evicted[#evicted + 1] = popped[i] end
  end
  redis.call('SELECT', auxDb)
end
redis.call('EXPIRE', idx, ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[9], ARGV[10])
return evicted
`;

// KEYS[1] the schedule (idx:due); ARGV: now ms, limit, sessionsDb, auxDb, sessionPrefix, indexPrefix.
// Returns {users checked, members pruned, indexes deleted}.
const SWEEP = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local now = tonumber(ARGV[1])
local pruned, deleted = 0, 0
for _, user in ipairs(due) do
  local idx = ARGV[6] .. user
  local members = redis.call('ZRANGE', idx, 0, -1)
  redis.call('SELECT', ARGV[3])
  local dead, soonest = {}, nil
  for _, m in ipairs(members) do
    local ttl = redis.call('PTTL', ARGV[5] .. m)
    if ttl < 0 then dead[#dead + 1] = m
    elseif soonest == nil or ttl < soonest then soonest = ttl end
  end
  redis.call('SELECT', ARGV[4])
  if #dead > 0 then redis.call('ZREM', idx, unpack(dead)); pruned = pruned + #dead end
  if soonest == nil then
    redis.call('DEL', idx)
    redis.call('ZREM', KEYS[1], user)
    deleted = deleted + 1
  else
    redis.call('ZADD', KEYS[1], now + soonest + 1, user)
  end
end
return {#due, pruned, deleted}
`;

// KEYS[1] index; ARGV: sessionsDb, auxDb, sessionPrefix. Returns how many sessions existed.
const INDEX_PREFIX = 'idx:';
/** The janitor's schedule: user -> when their index must next be checked (epoch ms); one per shard tag. */
const dueKey = (tag: string) => (tag ? `idx-due:${tag}` : 'idx-due');

const END_ALL = `
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
redis.call('SELECT', ARGV[1])
local ended = 0
for _, m in ipairs(members) do ended = ended + redis.call('DEL', ARGV[3] .. m) end
redis.call('SELECT', ARGV[2])
return ended
`;

interface IndexRedis extends Redis {
  indexAdd(numKeys: number, ...args: Array<string | number>): Promise<string[]>;
  indexEndAll(key: string, sessionsDb: number, auxDb: number, prefix: string): Promise<number>;
  indexSweep(key: string, now: number, limit: number, sessionsDb: number, auxDb: number, sessionPrefix: string, indexPrefix: string): Promise<[number, number, number]>;
}

export class RedisUserSessionIndex implements UserSessionIndex {
  readonly scope = 'cluster';
  private readonly aux: IndexRedis;

  constructor(
    private readonly sessions: Redis,
    aux: Redis,
    private readonly sessionPrefix: string,
    private readonly opts: IndexOptions & { sessionsDb: number; auxDb: number },
  ) {
    if (!('indexAdd' in aux)) {
      aux.defineCommand('indexAdd', { lua: ADD });
      aux.defineCommand('indexEndAll', { numberOfKeys: 1, lua: END_ALL });
      aux.defineCommand('indexSweep', { numberOfKeys: 1, lua: SWEEP });
    }
    this.aux = aux as IndexRedis;
  }

  private key(user: string): string {
    return `${INDEX_PREFIX}${userTag(this.opts.layout, user)}${user}`;
  }

  /**
   * Checks the users whose index is due (see above), `limit` at a time, until none is due or
   * `maxRounds` batches ran; returns the members pruned and indexes deleted.
   */
  async sweep(limit = 500, maxRounds = 10): Promise<{ checked: number; pruned: number; deleted: number }> {
    const o = this.opts;
    const total = { checked: 0, pruned: 0, deleted: 0 };
    try {
      for (const tag of allTags(o.layout)) {
        for (let round = 0; round < maxRounds; round++) {
          const [checked, pruned, deleted] = await this.aux.indexSweep(dueKey(tag), Date.now(), limit, o.sessionsDb, o.auxDb, this.sessionPrefix, INDEX_PREFIX + tag);
          total.checked += checked;
          total.pruned += pruned;
          total.deleted += deleted;
          if (checked < limit) break;
        }
      }
      return total;
    } catch (err) {
      throw storeUnavailable(err);
    }
  }

  async add(user: string, sid: string, createdAt: number, settle: Settlement = { clear: [], release: [] }): Promise<string[]> {
    const o = this.opts;
    const keys = [this.key(user), dueKey(userTag(o.layout, user)), ...settle.clear, ...settle.release];
    try {
      const due = Date.now() + o.idleTimeoutS * 1000; // no session of the user can have expired before
      const evicted = await this.aux.indexAdd(
        keys.length,
        ...keys,
        sid,
        createdAt,
        o.maxPerUser,
        o.absoluteTimeoutS,
        o.sessionsDb,
        o.auxDb,
        this.sessionPrefix,
        settle.clear.length,
        due,
        user,
      );
      await replicated(this.aux, o.durability);
      return evicted;
    } catch (err) {
      throw asStoreError(err);
    }
  }

  async remove(user: string, sid: string): Promise<void> {
    try {
      await this.aux.zrem(this.key(user), sid);
    } catch (err) {
      throw storeUnavailable(err);
    }
  }

  async list(user: string): Promise<SessionSummary[]> {
    const key = this.key(user);
    try {
      const flat = await this.aux.zrange(key, '0', '-1', 'WITHSCORES');
      const members: Array<{ id: string; createdAt: number }> = [];
      for (let i = 0; i < flat.length; i += 2) members.push({ id: flat[i]!, createdAt: Number(flat[i + 1]) });
      if (members.length === 0) return [];
      const pipeline = this.sessions.pipeline();
      for (const m of members) pipeline.get(this.sessionPrefix + m.id).pttl(this.sessionPrefix + m.id);
      const replies = (await pipeline.exec()) ?? [];
      const now = Date.now();
      const alive: SessionSummary[] = [];
      const gone: string[] = [];
      members.forEach((m, i) => {
        const raw = replies[2 * i]?.[1] as string | null;
        const pttl = replies[2 * i + 1]?.[1] as number;
        const sess = raw ? this.opts.codec.parse(raw) : null;
        if (!sess || sess.user !== user || pttl <= 0) {
          gone.push(m.id);
          return;
        }
        alive.push({ id: m.id, createdAt: m.createdAt, lastSeenAt: now - (this.opts.idleTimeoutS * 1000 - pttl), node: sess.node });
      });
      if (gone.length) await this.aux.zrem(key, ...gone);
      return alive;
    } catch (err) {
      throw storeUnavailable(err);
    }
  }

  async endAll(user: string): Promise<number> {
    try {
      const ended = await this.aux.indexEndAll(this.key(user), this.opts.sessionsDb, this.opts.auxDb, this.sessionPrefix);
      await replicated(this.aux, this.opts.durability);
      return ended;
    } catch (err) {
      throw asStoreError(err);
    }
  }
}

export class LocalUserSessionIndex implements UserSessionIndex {
  readonly scope = 'node';
  private readonly byUser = new Map<string, Map<string, number>>();
  private readonly owner = new Map<string, string>();

  constructor(
    private readonly store: LocalSessionStore,
    private readonly opts: Pick<IndexOptions, 'maxPerUser'> & { nodeId: string },
  ) {
    store.on('gone', (sid: string) => this.forget(sid));
  }

  /** Users and session ids held (for tests and the soak: both must come back down to zero). */
  get stats(): { users: number; sessions: number } {
    return { users: this.byUser.size, sessions: this.owner.size };
  }

  async add(user: string, sid: string, createdAt: number): Promise<string[]> {
    const ids = this.byUser.get(user) ?? new Map<string, number>();
    this.byUser.set(user, ids);
    ids.set(sid, createdAt);
    this.owner.set(sid, user);
    const evicted: string[] = [];
    for (const id of [...ids.keys()]) {
      if (ids.size <= this.opts.maxPerUser) break;
      // Map iterates in insertion order: oldest first. Dead entries are never here (forget()).
      if (this.store.has(id)) evicted.push(id);
      this.store.end(id);
      this.forget(id);
    }
    return evicted;
  }

  async remove(_user: string, sid: string): Promise<void> {
    this.forget(sid);
  }

  async list(user: string): Promise<SessionSummary[]> {
    const ids = this.byUser.get(user);
    if (!ids) return [];
    return [...ids].filter(([id]) => this.store.has(id)).map(([id, createdAt]) => ({ id, createdAt, lastSeenAt: this.store.lastSeen(id) ?? createdAt, node: this.opts.nodeId }));
  }

  async endAll(user: string): Promise<number> {
    const ids = [...(this.byUser.get(user)?.keys() ?? [])];
    let ended = 0;
    for (const id of ids) {
      if (this.store.has(id)) ended++;
      this.store.end(id);
      this.forget(id);
    }
    return ended;
  }

  private forget(sid: string): void {
    const user = this.owner.get(sid);
    if (user === undefined) return;
    this.owner.delete(sid);
    const ids = this.byUser.get(user);
    ids?.delete(sid);
    if (ids?.size === 0) this.byUser.delete(user);
  }
}
