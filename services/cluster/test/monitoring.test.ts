import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { evaluatePanels, instantQuery } from '../../../infra/grafana/panels.js';
import { kill, start } from '../src/cluster.js';
import { resolveK6, startK6 } from '../src/experiment/k6.js';
import { SURVIVAL_SCRIPT } from '../src/experiment/run.js';
import { Client, loginMany, startCluster } from './support.js';

// The proof that the dashboards show something, without a Grafana server: bring up the cluster
// with real Prometheus and exporters, drive load (k6 pushing its own metrics by remote write,
// plus logins, failures, logouts and a node kill), then evaluate every PromQL expression of
// every panel through Prometheus's HTTP API: each must return at least one series.
let cluster: Awaited<ReturnType<typeof startCluster>>;
let prom: string;
beforeAll(async () => {
  cluster = await startCluster({ mode: 'shared', nodes: 3, monitoring: true });
  prom = cluster.parts.find((p) => p.kind === 'prometheus')!.url;
});
afterAll(async () => {
  await cluster?.stop();
});

it('every panel of every dashboard has data after load and a failover', async () => {
  const k6 = startK6({
    bin: resolveK6(),
    script: SURVIVAL_SCRIPT,
    vars: { BASE_URL: cluster.url, MODE: 'shared', PROFILE: 'experiment', DURATION: '16s', VUS: '6', USER_OFFSET: '40', KILL: '1', RESTART: '1', SUMMARY_PATH: path.join(cluster.dir, 'k6-summary.json') },
    jsonOut: path.join(cluster.dir, 'k6.json'),
    htmlReport: path.join(cluster.dir, 'k6.html'),
    prometheusWrite: `${prom}/api/v1/write`,
    logFile: path.join(cluster.dir, 'k6.log'),
  });

  // Alongside: logins that fail, logouts, "log out everywhere", and a node that dies and returns.
  const clients = await loginMany(cluster.url, 10);
  for (const c of clients.slice(0, 3)) await c.post('/api/logout');
  await clients[3]!.del('/api/sessions');
  for (let i = 0; i < 3; i++) await new Client(cluster.url).post('/api/login', { username: 'user30', password: 'wrong' });
  await new Promise((r) => setTimeout(r, 5000));
  await kill('app-3', { dir: cluster.dir, signal: 'KILL' });
  await new Promise((r) => setTimeout(r, 5000));
  await start('app-3', { dir: cluster.dir });

  const { code } = await k6.exited;
  expect(code, fs.readFileSync(path.join(cluster.dir, 'k6.log'), 'utf8').slice(-2000)).toBe(0);
  // Two more scrapes after the last request, so every rate() has its samples.
  await new Promise((r) => setTimeout(r, 11_000));

  expect((await instantQuery(prom, 'count(up{job="app"} == 1)')).series).toBe(1);
  const results = await evaluatePanels(prom, { skipK6: false });
  const empty = results.filter((r) => r.error || r.series === 0);
  console.log(`panels: ${results.length} expressions over ${new Set(results.map((r) => r.dashboard)).size} dashboards; empty: ${empty.length}`);
  expect(results.length).toBeGreaterThan(20);
  expect(empty.map((r) => `${r.dashboard} / ${r.panel}: ${r.error ?? 'no series'} — ${r.expr}`)).toEqual([]);
}, 120_000);
