import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from './config.js';

/**
 * The PostgreSQL pool of database mode, tuned to fail fast like the Redis clients (redis.ts): a
 * statement or a connection attempt that takes longer than `timeoutMs` fails (→ 503), and a
 * broken idle connection is logged and replaced, never a crash.
 */
export function openDatabase(config: Pick<Config, 'database' | 'nodeId'>, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: config.database.url,
    application_name: config.nodeId,
    max: 10,
    connectionTimeoutMillis: config.database.timeoutMs,
    query_timeout: config.database.timeoutMs,
    statement_timeout: config.database.timeoutMs,
    idleTimeoutMillis: 30_000,
  });
  let down = false;
  pool.on('error', (err) => {
    if (!down) logger.warn({ err: err.message }, 'database connection lost; reconnecting on the next query');
    down = true;
  });
  pool.on('connect', () => {
    if (down) logger.info('database reachable again');
    down = false;
  });
  return pool;
}
