import type { Client } from './client.js';
import { waitFor } from './ports.js';

/**
 * Acknowledged writes across a store failover, per session. Every GET /api/me is a session write
 * (its request counter); a client keeps the last counter a 200 acknowledged. After the failover the
 * counter must be at or past it: a write applied whose reply died with the primary leaves it
 * higher, which is no loss, and is never set off against another session's loss.
 */
export class AcknowledgedCounters {
  private readonly last = new Map<Client, number>();

  constructor(clients: Client[]) {
    for (const c of clients) this.last.set(c, 0);
  }

  /** One reply to GET /api/me of `c`: a 200 acknowledged its counter. */
  record(c: Client, r: { status: number; body: { requests?: number } }): void {
    if (r.status === 200) this.last.set(c, Math.max(this.last.get(c) ?? 0, r.body.requests!));
  }

  /** The fewest writes any session has had acknowledged so far. */
  fewest(): number {
    return Math.min(...this.last.values());
  }

  /**
   * Reads every session once more (GET /api/me, retried while it answers 503: a node can still be
   * reconnecting to the new primary) and returns, per session in the constructor's order, its
   * status and how many acknowledged writes it lost.
   */
  async lostPerSession(): Promise<Array<{ status: number; lost: number; body: unknown }>> {
    const out: Array<{ status: number; lost: number; body: unknown }> = [];
    for (const [c, acknowledged] of this.last) {
      let me = await c.get('/api/me');
      await waitFor('a node to answer this session again', async () => me.status !== 503 || (me = await c.get('/api/me')).status !== 503, 10_000, 200).catch(() => {});
      // This read is a write too: it answers the stored counter + 1.
      out.push({ status: me.status, lost: me.status === 200 ? Math.max(0, acknowledged + 1 - me.body.requests) : NaN, body: me.body });
    }
    return out;
  }
}

/** A failed write of the load: which session, when, and what it answered. */
export interface WriteFailure {
  c: Client;
  at: number;
  status: number;
  code?: string;
}

/**
 * Steady writes on every session (GET /api/me, one per `everyMs` per client) and a ping of a route
 * that needs no session beside them, through `url`, until `stop()`: what a store fault's tests put
 * it under. Every reply is recorded: acknowledged counters, failed writes, ping statuses.
 */
export function writeLoad(url: string, clients: Client[], everyMs: number) {
  const acknowledged = new AcknowledgedCounters(clients);
  const failures: WriteFailure[] = [];
  const pings: number[] = [];
  let stopped = false;
  const pause = () => new Promise((r) => setTimeout(r, everyMs));
  const writers = clients.map(async (c) => {
    while (!stopped) {
      const r = await c.get('/api/me'); // each one counts: a session write
      acknowledged.record(c, r);
      if (r.status !== 200) failures.push({ c, at: Date.now(), status: r.status, code: r.body?.error?.code });
      await pause();
    }
  });
  const pinger = (async () => {
    while (!stopped) {
      pings.push((await fetch(url + '/api/ping')).status);
      await pause();
    }
  })();
  return {
    acknowledged,
    failures,
    pings,
    /** Resolves once every session has had `n` writes acknowledged. */
    started: (n = 3) => waitFor(`${n} acknowledged writes on every session`, () => acknowledged.fewest() >= n, 15_000, 50),
    /**
     * Resolves once writes have failed after `since` and then gone through for `quietMs`, or after
     * `timeoutMs` (the caller asserts the outage from `failures`).
     */
    resumed: (since: number, quietMs = 2000, timeoutMs = 30_000) =>
      waitFor(
        'writes to fail and then go through again',
        () => {
          const last = failures.at(-1)?.at ?? 0;
          return last > since && Date.now() - last > quietMs;
        },
        timeoutMs,
        100,
      ).catch(() => {}),
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all([...writers, pinger]);
    },
  };
}
