import type { SessionData } from 'express-session';
import type { Pool } from 'pg';
import { refreshAfterS } from '../types.js';
import { BaseSessionStore, type BaseStoreOptions, type CasResult } from './base-store.js';

/**
 * An express-session store on PostgreSQL, with the guarantees of the Redis store (shared-store.ts).
 *
 * Why not connect-pg-simple: its `set` is an upsert, so a save that races a logout writes the
 * destroyed session back (a stolen cookie outlives the logout), and two nodes saving one session
 * at once lose one of the writes. Here:
 * - a read is one statement, which also extends the idle expiry, at most once a minute or a tenth
 *   of the idle timeout (refreshAfterS; an UPDATE per read would write a row version per request);
 * - a save of a loaded session is a compare-and-set on the payload it read (`WHERE sess = $old`),
 *   merged with what another node wrote meanwhile (merge.ts) and retried, in the loop every store
 *   shares (base-store.ts); a row that is gone stays gone (401), it is never re-inserted;
 * - expired rows are never read (`expires > now()`), and a janitor deletes them in batches
 *   through the index on `expires`, never with a full-table scan on the request path;
 * - every failure is STORE_UNAVAILABLE (503 + Retry-After), bounded by the pool's timeouts.
 * `user_name`, `node` and `created_at` are columns beside the payload, so the per-user index is a
 * query on the same table (pg-index.ts) and "log out everywhere" one DELETE.
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS sessions (
  sid        text PRIMARY KEY,
  sess       text NOT NULL,
  expires    timestamptz NOT NULL,
  user_name  text,
  node       text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_name) WHERE user_name IS NOT NULL;
`;

const READ = `
WITH s AS (SELECT sid, sess, expires FROM sessions WHERE sid = $1 AND expires > now()),
touched AS (
  UPDATE sessions SET expires = now() + make_interval(secs => $2)
  FROM s WHERE sessions.sid = s.sid AND s.expires < now() + make_interval(secs => $3::float8)
)
SELECT sess FROM s`;
const INSERT = `
INSERT INTO sessions (sid, sess, expires, user_name, node) VALUES ($1, $2, now() + make_interval(secs => $3), $4, $5)
ON CONFLICT (sid) DO UPDATE SET sess = EXCLUDED.sess, expires = EXCLUDED.expires, user_name = EXCLUDED.user_name, node = EXCLUDED.node`;
const CAS = `
UPDATE sessions SET sess = $3, expires = now() + make_interval(secs => $4), user_name = $5, node = $6
WHERE sid = $1 AND sess = $2 AND expires > now()`;
const CURRENT = 'SELECT sess FROM sessions WHERE sid = $1 AND expires > now()';

export interface PgStoreOptions extends BaseStoreOptions {
  /** Counts each statement by name (the benchmark's queries per request). */
  onQuery?: (statement: string) => void;
}

export class PgSessionStore extends BaseSessionStore {
  constructor(
    private readonly pool: Pool,
    private readonly pgOpts: PgStoreOptions,
  ) {
    super(pgOpts);
  }

  /** A read extends the expiry once less than this is left: the idle timeout less the refresh interval. */
  private readonly extendBelowS = this.opts.idleTimeoutS - refreshAfterS(this.opts.idleTimeoutS);

  private async query(name: string, text: string, values: unknown[]) {
    this.pgOpts.onQuery?.(name);
    return this.pool.query({ name, text, values });
  }

  protected async read(sid: string): Promise<string | null> {
    const r = await this.query('session_read', READ, [sid, this.opts.idleTimeoutS, this.extendBelowS]);
    return (r.rows[0] as { sess: string } | undefined)?.sess ?? null;
  }

  protected async insert(sid: string, raw: string, ttlS: number, sess: SessionData): Promise<void> {
    await this.query('session_insert', INSERT, [sid, raw, ttlS, sess.user ?? null, sess.node ?? null]);
  }

  protected async compareAndSet(sid: string, expected: string, raw: string, ttlS: number, merged: SessionData): Promise<CasResult> {
    const r = await this.query('session_cas', CAS, [sid, expected, raw, ttlS, merged.user ?? null, merged.node ?? null]);
    if (r.rowCount === 1) return { written: true };
    const now = await this.query('session_current', CURRENT, [sid]);
    return { written: false, current: (now.rows[0] as { sess: string } | undefined)?.sess ?? null };
  }

  protected async remove(sid: string): Promise<void> {
    await this.query('session_delete', 'DELETE FROM sessions WHERE sid = $1', [sid]);
  }

  /** Only for a cookie with an expiry (this node's cookies have none): reads extend the idle expiry themselves (READ). */
  protected override async extend(sid: string, ttlS: number): Promise<void> {
    await this.query('session_touch', 'UPDATE sessions SET expires = now() + make_interval(secs => $2) WHERE sid = $1 AND expires > now()', [sid, ttlS]);
  }

  protected async entries(): Promise<Array<[string, string]>> {
    const r = await this.pool.query('SELECT sid, sess FROM sessions WHERE expires > now()');
    return (r.rows as Array<{ sid: string; sess: string }>).map((row) => [row.sid, row.sess]);
  }

  protected override async sessionIds(): Promise<string[]> {
    const r = await this.pool.query('SELECT sid FROM sessions WHERE expires > now()');
    return (r.rows as Array<{ sid: string }>).map((row) => row.sid);
  }

  protected override async count(): Promise<number> {
    const r = await this.pool.query('SELECT count(*)::int AS n FROM sessions WHERE expires > now()');
    return (r.rows[0] as { n: number }).n;
  }

  protected async removeAll(): Promise<void> {
    await this.pool.query('DELETE FROM sessions');
  }

  /** Deletes up to `batch` expired rows through the expiry index; returns how many. */
  async prune(batch = 1000): Promise<number> {
    const r = await this.query('session_prune', 'DELETE FROM sessions WHERE sid IN (SELECT sid FROM sessions WHERE expires < now() LIMIT $1)', [batch]);
    return r.rowCount ?? 0;
  }
}
