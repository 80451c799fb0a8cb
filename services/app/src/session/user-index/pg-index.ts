import type { Pool } from 'pg';
import { storeUnavailable } from '../../errors.js';
import type { SessionSummary, UserSessionIndex } from './user-index.js';

/**
 * The per-user index of database mode: a query on the sessions table itself (its `user_name`
 * column, indexed), so there is nothing to keep in step. The cap evicts the oldest live sessions
 * beyond `maxPerUser` in one statement; "log out everywhere" is one DELETE, so a login that races
 * it is either deleted with the rest or committed after it (and listed).
 */
export class PgUserSessionIndex implements UserSessionIndex {
  readonly scope = 'cluster' as const;

  constructor(
    private readonly pool: Pool,
    private readonly opts: { maxPerUser: number; idleTimeoutS: number; onQuery?: (statement: string) => void },
  ) {}

  private async query<T>(name: string, text: string, values: unknown[]): Promise<T[]> {
    this.opts.onQuery?.(name);
    try {
      return (await this.pool.query({ name, text, values })).rows as T[];
    } catch (err) {
      throw storeUnavailable(err);
    }
  }

  async add(user: string): Promise<string[]> {
    const rows = await this.query<{ sid: string }>(
      'index_cap',
      `DELETE FROM sessions WHERE sid IN (
         SELECT sid FROM sessions WHERE user_name = $1 AND expires > now() ORDER BY created_at DESC, sid OFFSET $2
       ) RETURNING sid`,
      [user, this.opts.maxPerUser],
    );
    return rows.map((r) => r.sid);
  }

  /** The session row is the index entry: destroying the session removed it. */
  async remove(): Promise<void> {}

  async list(user: string): Promise<SessionSummary[]> {
    const rows = await this.query<{ sid: string; created: string; seen: string; node: string | null }>(
      'index_list',
      `SELECT sid, (extract(epoch FROM created_at) * 1000)::bigint AS created,
              (extract(epoch FROM expires - make_interval(secs => $2)) * 1000)::bigint AS seen, node
         FROM sessions WHERE user_name = $1 AND expires > now()`,
      [user, this.opts.idleTimeoutS],
    );
    return rows.map((r) => ({ id: r.sid, createdAt: Number(r.created), lastSeenAt: Math.max(Number(r.created), Number(r.seen)), node: r.node ?? '' }));
  }

  async endAll(user: string): Promise<number> {
    const rows = await this.query<{ live: boolean }>('index_end_all', 'DELETE FROM sessions WHERE user_name = $1 RETURNING expires > now() AS live', [user]);
    return rows.filter((r) => r.live).length;
  }
}
