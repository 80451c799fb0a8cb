import type { Redis } from 'ioredis';
import { storeUnavailable } from '../../errors.js';

/**
 * REDIS_WAIT_REPLICAS: acknowledge a change only once this many replicas have it. Replication is
 * asynchronous, so without it a primary killed right after acknowledging a change can take the
 * change with it: a write lost, or a deleted session back after a failover.
 */
export interface Durability {
  replicas: number;
  timeoutMs: number;
}

/**
 * Waits (Redis WAIT) until `d.replicas` replicas have every write sent on `connection` so far:
 * WAIT confirms the writes of the connection it is sent on, and holds that connection until the
 * replicas answer. Throws STORE_UNAVAILABLE (503) when fewer confirm within the timeout: the change
 * may or may not survive a failover, so it is not acknowledged. No durability setting: returns at once.
 */
export async function replicated(connection: Redis, d: Durability | undefined): Promise<void> {
  if (!d) return;
  const acked = await connection.wait(d.replicas, d.timeoutMs);
  if (acked < d.replicas) throw storeUnavailable(new Error(`${acked} of ${d.replicas} replicas confirmed the write within ${d.timeoutMs} ms`));
}
