import type { Request } from 'express';
import { Store, type SessionData } from 'express-session';
import type { Pool } from 'pg';
import { AppError, asStoreError, storeUnavailable } from '../errors.js';
import type { SessionCodec } from './codec.js';
import type { MergePolicy } from './merge.js';
import type { StoreObserver } from './observer.js';
import { adopt, createLoaded, finish, loadedPayload, remember, type StoreCallback, ttlFor } from './snapshot.js';

/**
 * An express-session store on PostgreSQL, with the guarantees of the Redis store (shared-store.ts).
 *
 * Why not connect-pg-simple: its `set` is an upsert, so a save that races a logout writes the
 * destroyed session back (a stolen cookie outlives the logout), and two nodes saving one session
 * at once lose one of the writes. Here:
 * - a read is one statement, which also extends the idle expiry, at most once a minute (an UPDATE
 *   per read would write a row version per request);
 * - a save of a loaded session is a compare-and-set on the payload it read (`WHERE sess = $old`),
 *   merged with what another node wrote meanwhile (merge.ts) and retried; a row that is gone
 *   stays gone (401), it is never re-inserted;
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
  FROM s WHERE sessions.sid = s.sid AND s.expires < now() + make_interval(secs => $2 - 60)
)
SELECT sess FROM s`;
const INSERT = `
INSERT INTO sessions (sid, sess, expires, user_name, node) VALUES ($1, $2, now() + make_interval(secs => $3), $4, $5)
ON CONFLICT (sid) DO UPDATE SET sess = EXCLUDED.sess, expires = EXCLUDED.expires, user_name = EXCLUDED.user_name, node = EXCLUDED.node`;
const CAS = `
UPDATE sessions SET sess = $3, expires = now() + make_interval(secs => $4), user_name = $5, node = $6
WHERE sid = $1 AND sess = $2 AND expires > now()`;
const CURRENT = 'SELECT sess FROM sessions WHERE sid = $1 AND expires > now()';

const MAX_ATTEMPTS = 100;

export interface PgStoreOptions {
  idleTimeoutS: number;
  codec: SessionCodec;
  observer: StoreObserver;
  merge: MergePolicy;
  /** Counts each statement by name (the benchmark's queries per request). */
  onQuery?: (statement: string) => void;
}

export class PgSessionStore extends Store {
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly pool: Pool,
    private readonly opts: PgStoreOptions,
  ) {
    super();
  }

  private async query(name: string, text: string, values: unknown[]) {
    this.opts.onQuery?.(name);
    return this.pool.query({ name, text, values });
  }

  override get(sid: string, cb: StoreCallback<SessionData | null>): void {
    const done = this.opts.observer.start('get');
    this.query('session_read', READ, [sid, this.opts.idleTimeoutS]).then(
      (r) => {
        done();
        const raw = (r.rows[0] as { sess: string } | undefined)?.sess;
        const sess = raw === undefined ? null : this.opts.codec.parse(raw);
        finish(null, sess && remember(sess, raw!), cb);
      },
      (err: unknown) => {
        done(err);
        finish(storeUnavailable(err), null, cb);
      },
    );
  }

  override createSession(req: Request, sess: SessionData) {
    return createLoaded(sess, this.opts.codec, (data) => super.createSession(req, data));
  }

  override set(sid: string, sess: SessionData, cb?: StoreCallback<null>): void {
    const ttl = ttlFor(sess, this.opts.idleTimeoutS);
    if (ttl <= 0) return this.destroy(sid, cb);
    const done = this.opts.observer.start('set');
    const base = loadedPayload(sess);
    const write =
      base === undefined
        ? async () => {
            const raw = this.opts.codec.stringify(sess);
            await this.query('session_insert', INSERT, [sid, raw, ttl, sess.user ?? null, sess.node ?? null]);
            remember(sess, raw);
          }
        : () => this.serialised(sid, () => this.merge(sid, sess, base, ttl));
    write().then(
      () => {
        done();
        finish(null, null, cb);
      },
      (err: unknown) => {
        done(err);
        finish(asStoreError(err), null, cb);
      },
    );
  }

  override destroy(sid: string, cb?: StoreCallback<null>): void {
    const done = this.opts.observer.start('destroy');
    this.query('session_delete', 'DELETE FROM sessions WHERE sid = $1', [sid]).then(
      () => {
        done();
        finish(null, null, cb);
      },
      (err: unknown) => {
        done(err);
        finish(storeUnavailable(err), null, cb);
      },
    );
  }

  /** Reads extend the expiry themselves (READ): nothing to do per request. */
  override touch(_sid: string, _sess: SessionData, cb?: StoreCallback<null>): void {
    finish(null, null, cb);
  }

  override length(cb: StoreCallback<number>): void {
    this.pool.query('SELECT count(*)::int AS n FROM sessions WHERE expires > now()').then(
      (r) => finish(null, (r.rows[0] as { n: number }).n, cb),
      (err: unknown) => finish(storeUnavailable(err), 0, cb),
    );
  }

  override clear(cb?: StoreCallback<null>): void {
    this.pool.query('DELETE FROM sessions').then(
      () => finish(null, null, cb),
      (err: unknown) => finish(storeUnavailable(err), null, cb),
    );
  }

  /** Deletes up to `batch` expired rows through the expiry index; returns how many. */
  async prune(batch = 1000): Promise<number> {
    const r = await this.query('session_prune', 'DELETE FROM sessions WHERE sid IN (SELECT sid FROM sessions WHERE expires < now() LIMIT $1)', [batch]);
    return r.rowCount ?? 0;
  }

  private async merge(sid: string, sess: SessionData, base: string, ttl: number): Promise<void> {
    const parse = (raw: string) => this.opts.codec.parse(raw) ?? ({} as SessionData);
    const loaded = parse(base);
    let expected = base;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const merged = this.opts.merge(parse(expected), loaded, sess);
      const raw = this.opts.codec.stringify({ ...merged, cookie: sess.cookie } as SessionData);
      if (raw === expected) return adopt(sess, merged, raw);
      const r = await this.query('session_cas', CAS, [sid, expected, raw, ttl, merged.user ?? null, merged.node ?? null]);
      if (r.rowCount === 1) return adopt(sess, merged, raw);
      const now = await this.query('session_current', CURRENT, [sid]);
      const current = (now.rows[0] as { sess: string } | undefined)?.sess;
      if (current === undefined) throw new AppError('UNAUTHENTICATED'); // destroyed or expired meanwhile: stays so
      expected = current;
    }
    throw storeUnavailable(new Error(`session write lost the compare-and-set ${MAX_ATTEMPTS} times`));
  }

  /** Saves of one session on this node run one after another (conflicts then only come from other nodes). */
  private serialised(sid: string, write: () => Promise<void>): Promise<void> {
    const run = (this.queues.get(sid) ?? Promise.resolve()).then(write);
    const tail = run.catch(() => {});
    this.queues.set(sid, tail);
    void tail.then(() => {
      if (this.queues.get(sid) === tail) this.queues.delete(sid);
    });
    return run;
  }
}
