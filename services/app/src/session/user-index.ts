import type { Redis } from 'ioredis';
import { storeUnavailable } from '../errors.js';
import type { SessionCodec } from './codec.js';
import type { LocalSessionStore } from './local-store.js';

/**
 * Which sessions a user has, so they can be listed and ended together ("log out everywhere").
 *
 * Shared mode keeps one sorted set per user in Redis (member: session id, score: creation time),
 * written at login and logout: no SCAN and no keyspace notifications. It stays bounded: at most
 * `maxPerUser` members (the oldest session is ended when a new one would exceed it), members
 * whose session expired are pruned whenever the set is read, and the set itself expires one
 * absolute timeout after the latest login, since no session in it can outlive that.
 *
 * Sticky mode keeps the same index in this node's memory, beside the sessions themselves: it
 * knows only this node's sessions, which is exactly what sticky sessions can offer.
 */
export interface SessionSummary {
  id: string;
  createdAt: number;
  lastSeenAt: number;
  node: string;
}

export interface UserSessionIndex {
  /** Records a new session; returns the ids of sessions it evicted (already ended). */
  add(user: string, sid: string, createdAt: number): Promise<string[]>;
  remove(user: string, sid: string): Promise<void>;
  list(user: string): Promise<SessionSummary[]>;
  /** Ends every session of the user; returns how many there were. */
  endAll(user: string): Promise<number>;
}

interface IndexOptions {
  maxPerUser: number;
  idleTimeoutS: number;
  absoluteTimeoutS: number;
  codec: SessionCodec;
}

export class RedisUserSessionIndex implements UserSessionIndex {
  constructor(
    private readonly sessions: Redis,
    private readonly aux: Redis,
    private readonly sessionPrefix: string,
    private readonly opts: IndexOptions,
  ) {}

  private key(user: string): string {
    return `idx:${user}`;
  }

  async add(user: string, sid: string, createdAt: number): Promise<string[]> {
    const key = this.key(user);
    try {
      // One round trip; no MULTI needed: a concurrent login of the same user only changes which
      // of them evicts the oldest.
      const [, , [, count]] = (await this.aux
        .pipeline()
        .zadd(key, createdAt, sid)
        .expire(key, this.opts.absoluteTimeoutS)
        .zcard(key)
        .exec()) as [unknown, unknown, [unknown, number]];
      if (count <= this.opts.maxPerUser) return [];
      const popped = await this.aux.zpopmin(key, count - this.opts.maxPerUser);
      const evicted = popped.filter((_, i) => i % 2 === 0);
      if (evicted.length) await this.sessions.del(...evicted.map((id) => this.sessionPrefix + id));
      return evicted;
    } catch (err) {
      throw storeUnavailable(err);
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
        if (!sess || sess.user !== user || pttl <= 0) return void gone.push(m.id);
        alive.push({ id: m.id, createdAt: m.createdAt, lastSeenAt: now - (this.opts.idleTimeoutS * 1000 - pttl), node: sess.node });
      });
      if (gone.length) await this.aux.zrem(key, ...gone);
      return alive;
    } catch (err) {
      throw storeUnavailable(err);
    }
  }

  async endAll(user: string): Promise<number> {
    const key = this.key(user);
    try {
      const ids = await this.aux.zrange(key, '0', '-1');
      if (ids.length) await this.sessions.del(...ids.map((id) => this.sessionPrefix + id));
      await this.aux.del(key);
      return ids.length;
    } catch (err) {
      throw storeUnavailable(err);
    }
  }
}

export class LocalUserSessionIndex implements UserSessionIndex {
  private readonly byUser = new Map<string, Map<string, number>>();

  constructor(
    private readonly store: LocalSessionStore,
    private readonly opts: Pick<IndexOptions, 'maxPerUser'> & { nodeId: string },
  ) {}

  async add(user: string, sid: string, createdAt: number): Promise<string[]> {
    const ids = this.byUser.get(user) ?? new Map<string, number>();
    this.byUser.set(user, ids);
    ids.set(sid, createdAt);
    this.prune(user, ids);
    const evicted: string[] = [];
    for (const id of ids.keys()) {
      if (ids.size <= this.opts.maxPerUser) break;
      ids.delete(id); // Map iterates in insertion order: oldest first
      this.store.destroy(id);
      evicted.push(id);
    }
    return evicted;
  }

  async remove(user: string, sid: string): Promise<void> {
    this.byUser.get(user)?.delete(sid);
  }

  async list(user: string): Promise<SessionSummary[]> {
    const ids = this.byUser.get(user);
    if (!ids) return [];
    this.prune(user, ids);
    return [...ids].map(([id, createdAt]) => ({ id, createdAt, lastSeenAt: this.store.lastSeen(id) ?? createdAt, node: this.opts.nodeId }));
  }

  async endAll(user: string): Promise<number> {
    const ids = this.byUser.get(user);
    if (!ids) return 0;
    for (const id of ids.keys()) this.store.destroy(id);
    this.byUser.delete(user);
    return ids.size;
  }

  private prune(user: string, ids: Map<string, number>): void {
    for (const id of ids.keys()) if (!this.store.has(id)) ids.delete(id);
    if (ids.size === 0) this.byUser.delete(user);
  }
}
