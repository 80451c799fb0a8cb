import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kill, ps, start } from '../../src/cluster.js';
import { writeLoad } from '../../../../testkit/acknowledged.js';
import { loginMany, sentinelElectionsLost, sentinelSwitches, startCluster } from '../../../../testkit/cluster.js';
import { waitFor } from '../../../../testkit/ports.js';

// Redis high availability: a primary, two replicas and three Sentinels (`cluster up --store
// sentinel`), nodes following the primary through ioredis's Sentinel support. The primary is
// SIGKILLed under steady writes: session writes stop for the failover only (a few seconds with
// the store's tuning, not Sentinel's 30 s default), fail as JSON 503 meanwhile, never as a 502, and
// the sessions are all there afterwards on the new primary. Twice: with asynchronous replication
// (a write acknowledged in the instant before the kill may not have reached the replica: at most
// that one per session), and with REDIS_WAIT_REPLICAS=1 (a write is acknowledged only once a
// replica has it: not one acknowledged write may be lost).
describe.each([
  { replication: 'asynchronous', nodeEnv: {} as Record<string, string>, lostPerSession: 1 },
  { replication: 'REDIS_WAIT_REPLICAS=1', nodeEnv: { REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '400' }, lostPerSession: 0 },
])('$replication replication', ({ nodeEnv, lostPerSession }) => {
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  beforeAll(async () => {
    cluster = await startCluster({ mode: 'shared', nodes: 2, store: 'sentinel', nodeEnv });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  const roles = async () => Object.fromEntries((await ps(cluster.dir)).parts.filter((p) => p.kind === 'redis' || p.kind === 'sentinel').map((p) => [p.name, p.role ?? 'down']));

  it('a primary killed under load: writes resume on a new primary within seconds, every session kept', async () => {
    expect(await roles()).toEqual({
      'redis-1': 'primary',
      'redis-2': 'replica',
      'redis-3': 'replica',
      'sentinel-1': 'sentinel',
      'sentinel-2': 'sentinel',
      'sentinel-3': 'sentinel',
    });
    const clients = await loginMany(cluster.url, 10);
    const load = writeLoad(cluster.url, clients, 25);
    const { acknowledged, failures, pings } = load;
    // Every session writing steadily before the kill.
    await load.started();
    const killedAt = Date.now();
    await kill('redis-primary', { dir: cluster.dir });
    // Until writes have gone through for 2 s after the outage (at most 30 s).
    await load.resumed(killedAt);
    await load.stop();

    const outageS = failures.length ? (Math.max(...failures.map((f) => f.at)) - killedAt) / 1000 : 0;
    console.log(`sentinel failover: ${failures.length} failed writes, writes resumed ${outageS.toFixed(2)} s after the primary was killed`);
    const odd = failures.filter((f) => !(f.status === 503 && f.code === 'STORE_UNAVAILABLE'));
    expect(odd.map((f) => `${f.at - killedAt} ms: ${f.status} ${f.code}`)).toEqual([]);
    expect(failures.length).toBeGreaterThan(0); // the kill was felt
    // Tuned for seconds (down-after 2 s, failover-timeout 5 s): 3.9 s here (docs/local-cluster.md:
    // 3.86-3.91 s in 15 runs), with one election; under 10 s leaves a loaded machine twice that.
    // Sentinel's defaults would take over 30 s. An election that found no majority (the Sentinels
    // voted for different leaders) is retried after twice the failover timeout, 10 s, by design:
    // each such election the logs show allows those 10 s more.
    const electionsLost = sentinelElectionsLost(cluster.dir);
    if (electionsLost) console.log(`sentinel failover: ${electionsLost} election(s) without a majority, retried`);
    expect(outageS).toBeLessThan(10 + 10 * electionsLost);
    expect(pings.every((s) => s === 200)).toBe(true);

    // The topology settles: one new primary, the other server its replica. Writes resume as soon as
    // one replica is promoted; the Sentinels reconfigure the other one just after (within seconds).
    let r = await roles();
    await waitFor(
      'one primary and one replica among redis-2 and redis-3',
      async () => ((r = await roles()), [r['redis-2'], r['redis-3']].sort().join() === 'primary,replica'),
      15_000,
      200,
    );
    expect(r['redis-1']).toBe('down');
    expect([r['redis-2'], r['redis-3']].sort()).toEqual(['primary', 'replica']);
    // One failover, one promotion, seen alike by every Sentinel: a second one (a Sentinel calling the
    // live new primary down) would promote the other replica and lose the writes the first one took.
    const primary = `127.0.0.1:${cluster.parts.find((p) => p.name === (r['redis-2'] === 'primary' ? 'redis-2' : 'redis-3'))!.port}`;
    await waitFor('every Sentinel to log the promotion', async () => Object.values(sentinelSwitches(cluster.dir)).every((s) => s.length > 0), 10_000, 200);
    expect(sentinelSwitches(cluster.dir)).toEqual({ 'sentinel-1': [primary], 'sentinel-2': [primary], 'sentinel-3': [primary] });
    // Every session is on the new primary (a 401 would be a lost session), and its counter is where
    // its client last saw it acknowledged, or past it; behind it means acknowledged writes were lost.
    const after = await acknowledged.lostPerSession();
    expect(after.filter((a) => a.status !== 200).map((a) => JSON.stringify(a.body))).toEqual([]);
    const lost = after.map((a) => a.lost);
    console.log(`sentinel failover: acknowledged writes lost per session: ${lost.join(', ')}`);
    for (const n of lost) expect(n).toBeLessThanOrEqual(lostPerSession);

    // The old primary comes back as a replica of the new one, at once.
    await start('redis-1', { dir: cluster.dir });
    expect((await roles())['redis-1']).toBe('replica');
  }, 120_000);
});
