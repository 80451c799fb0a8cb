import { describe, expect, it } from 'vitest';
import { loginMany, startCluster } from '../../../../testkit/cluster.js';

// A session in use must outlive its idle timeout however short that timeout is, even when it is
// only read: a read refreshes it once a tenth of the idle timeout has passed, at most a minute
// (app/src/session/types.ts refreshAfterS). Through nginx, on 3 nodes: users read their carts at
// once, round after round, for three idle timeouts, each read on whichever node nginx picks; every
// read must answer 200. When the refresh waited a flat minute, a database row or a sealed cookie
// was never refreshed by reads under a 60 s timeout, and every session ended at its idle timeout.
// The pause between rounds is the users' pace, the input of the test. In heavy: it bounds a
// duration (a read within the timeout; the timeout passing unread).
const IDLE_S = 4;
const AT_ONCE = 8;
const PACE_MS = 800;

describe.each(['cookie', 'database'] as const)('%s mode behind nginx', (mode) => {
  it(`sessions only read, ${AT_ONCE} users at once, stay alive for three ${IDLE_S} s idle timeouts; left alone, they end`, async () => {
    const cluster = await startCluster({ mode, nodes: 3, nodeEnv: { LOG_LEVEL: 'warn', SESSION_IDLE_TIMEOUT: String(IDLE_S) } });
    try {
      const clients = await loginMany(cluster.url, AT_ONCE);
      const readAll = () => Promise.all(clients.map(async (c) => (await c.get('/api/cart')).status));
      const until = Date.now() + 3 * IDLE_S * 1000;
      for (let round = 1; Date.now() < until; round++) {
        expect(await readAll(), `round ${round}`).toEqual(Array(AT_ONCE).fill(200));
        await new Promise((res) => setTimeout(res, PACE_MS));
      }
      // Reads stop: a second past the idle timeout every session has ended (the refresh does not
      // keep a session forever). Any read before then would refresh it, so the test lets the
      // timeout pass unread: the duration is what is tested here.
      await new Promise((res) => setTimeout(res, IDLE_S * 1000 + 1000));
      expect(await readAll(), 'a second past the idle timeout, unread').toEqual(Array(AT_ONCE).fill(401));
    } finally {
      await cluster.stop();
    }
  }, 120_000);
});
