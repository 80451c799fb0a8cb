import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localPrometheusConfig } from '../../../services/cluster/src/prometheus-config.js';
import { renderNginx } from '../../../services/cluster/src/cluster.js';
import { terminate } from '../../../services/cluster/src/lib/pids.js';
import { freePort, waitFor } from '../../../services/cluster/src/lib/ports.js';
import {
  launch,
  nginxExporterSpec,
  nginxSpec,
  prometheusSpec,
  redisExporterSpec,
  redisSpec,
  sentinelSpec,
  type PartSpec,
  type PartState,
} from '../../../services/cluster/src/parts.js';
import { evaluatePanels, instantQuery, isK6Expression, panelExpressions } from '../../grafana/panels.js';

/**
 * evaluatePanels against a real Prometheus (Debian's, on a free loopback port) configured by
 * localPrometheusConfig from infra/prometheus/prometheus.yml, scraping a real Redis through
 * prometheus-redis-exporter (a primary with AOF, its replica and a Sentinel watching them, as
 * `--store sentinel` has, one of each), a real nginx through prometheus-nginx-exporter, and itself. No session
 * node runs here: the app panels are proven by the cluster integration test, after real load.
 * This test proves the evaluation itself (0 series for a missing metric, > 0 for a present one,
 * errors for invalid PromQL), that every dashboard expression is valid PromQL to Prometheus, and
 * that the Redis and nginx panels find their exporters' metrics.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const COMPOSE_CONFIG = path.resolve(here, '../../prometheus/prometheus.yml');

let tmp: string;
let promUrl: string;
/** The primary's and its replica's ports: the dashboards name the replica by it. */
let redisPort: number;
let replicaPort: number;
const parts: PartState[] = [];

async function scalar(expr: string): Promise<number> {
  const res = await fetch(new URL(`/api/v1/query?query=${encodeURIComponent(expr)}`, promUrl));
  const json = (await res.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
  const v = json.data?.result?.[0]?.value[1];
  return v === undefined ? Number.NaN : Number(v);
}

/** SET through Redis's inline protocol, so the keyspace (redis_db_keys) has something in it. */
function redisSet(port: number, key: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.once('error', reject);
    sock.once('data', (d) => (sock.end(), d.toString().startsWith('+OK') ? resolve() : reject(new Error(d.toString()))));
    sock.write(`SET ${key} 1\r\n`);
  });
}

// The parts are started the way the cluster runner starts them (services/cluster/src/parts.ts),
// with the project's own nginx.conf; only the session nodes are missing.
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'panels-'));
  let sentinelPort, redisExpPort, nginxPort, nginxStatusPort, nginxExpPort, promPort, noNode: number;
  [redisPort, replicaPort, sentinelPort, redisExpPort, nginxPort, nginxStatusPort, nginxExpPort, promPort, noNode] = (await Promise.all(
    Array.from({ length: 9 }, () => freePort()),
  )) as [number, number, number, number, number, number, number, number, number];
  const start = async (spec: PartSpec) => parts.push(await launch(spec, tmp));

  const dirOf = (name: string) => {
    fs.mkdirSync(path.join(tmp, name));
    return path.join(tmp, name);
  };
  await start(redisSpec(redisPort, dirOf('redis-1'), 'aof', { name: 'redis-1', replicated: true }));
  await redisSet(redisPort, 'sess:panels-test');
  await start(redisSpec(replicaPort, dirOf('redis-2'), 'aof', { name: 'redis-2', replicaOf: redisPort, replicated: true }));
  await start(sentinelSpec({ index: 1, port: sentinelPort, dir: path.join(tmp, 'sentinel-1'), primaryPort: redisPort }));
  await start(redisExporterSpec({ port: redisExpPort }));
  // An upstream with no node behind it: nginx serves its own /lb/healthz and stub_status.
  const confDir = path.join(tmp, 'nginx');
  renderNginx({ confDir, mode: 'shared', port: nginxPort, statusPort: nginxStatusPort, servers: [`127.0.0.1:${noNode}`] });
  await start(nginxSpec({ port: nginxPort, statusPort: nginxStatusPort, confDir }));
  await start(nginxExporterSpec({ port: nginxExpPort, statusPort: nginxStatusPort }));

  // The compose config, made local. The app job gets Prometheus itself as a stand-in target with a
  // node label, to show that file_sd target labels reach the series (no session node runs here).
  const { yaml, files } = localPrometheusConfig(
    fs.readFileSync(COMPOSE_CONFIG, 'utf8'),
    {
      app: [{ target: `127.0.0.1:${promPort}`, labels: { node: 'stand-in-1' } }],
      nginx: [`127.0.0.1:${nginxExpPort}`],
      redis: [
        { target: `127.0.0.1:${redisPort}`, labels: { redis: 'redis-1', exporter: `127.0.0.1:${redisExpPort}` } },
        { target: `127.0.0.1:${replicaPort}`, labels: { redis: 'redis-2', exporter: `127.0.0.1:${redisExpPort}` } },
      ],
      sentinel: [{ target: `127.0.0.1:${sentinelPort}`, labels: { redis: 'sentinel-1', exporter: `127.0.0.1:${redisExpPort}` } }],
      prometheus: [`127.0.0.1:${promPort}`],
    },
    path.join(tmp, 'targets'),
  );
  fs.mkdirSync(path.join(tmp, 'targets'));
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(file, text);
  fs.writeFileSync(path.join(tmp, 'prometheus.yml'), yaml);
  await start(prometheusSpec({ port: promPort, configFile: path.join(tmp, 'prometheus.yml'), dataDir: path.join(tmp, 'tsdb') }));
  promUrl = `http://127.0.0.1:${promPort}`;

  // Every target scraped successfully (the replica in sync, the Sentinel seeing it), then enough
  // samples for rate() over 30 s (two or more).
  await waitFor('all six targets up', async () => (await scalar('sum(up)')) === 6, 30_000, 250);
  await waitFor('the replica in sync and seen by the Sentinel', async () => (await scalar('sum(redis_sentinel_master_ok_slaves) + sum(redis_master_link_up)')) === 2, 30_000, 250);
  for (let i = 0; i < 20; i++) await fetch(`http://127.0.0.1:${nginxPort}/lb/healthz`).then((r) => r.text());
  await waitFor(
    'rate() over nginx and redis counters',
    async () => (await scalar('count(rate(nginx_http_requests_total[30s])) + count(rate(redis_commands_processed_total{job="redis"}[30s]))')) === 3,
    30_000,
    500,
  );
}, 90_000);

afterAll(async () => {
  for (const p of parts.reverse()) await terminate(p.pid, 5_000);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('evaluatePanels against a real Prometheus', () => {
  it('counts series: 0 for a missing metric, > 0 for up, an error for invalid PromQL', async () => {
    // A one-panel-per-case dashboard directory, evaluated like the real ones.
    const dir = fs.mkdtempSync(path.join(tmp, 'dash-'));
    const target = (expr: string) => ({ refId: 'A', expr });
    fs.writeFileSync(
      path.join(dir, 'probe.json'),
      JSON.stringify({
        title: 'probe',
        panels: [
          { id: 1, title: 'up', type: 'timeseries', targets: [target('up{job=~"$job", instance=~"$instance"}')] },
          { id: 2, title: 'missing', type: 'timeseries', targets: [target('no_such_metric_anywhere{job=~"$job", instance=~"$instance"}')] },
          { id: 3, title: 'invalid', type: 'timeseries', targets: [target('sum(rate(up{job=~"$job"}[$__rate_interval])')] },
          { id: 4, title: 'row', type: 'row', panels: [{ id: 5, title: 'nested', type: 'stat', targets: [target('count(up{job=~"$job"})')] }] },
          { id: 6, title: 'k6', type: 'timeseries', targets: [target('sum(rate(k6_http_reqs_total[$__rate_interval]))')] },
        ],
      }),
    );
    const res = await evaluatePanels(promUrl, { skipK6: false, dashboardsDir: dir });
    const by = Object.fromEntries(res.map((r) => [r.panel, r]));
    expect(by.up).toMatchObject({ series: 6, expr: 'up{job=~".+", instance=~".+"}' });
    expect(by.up!.error).toBeUndefined();
    expect(by.missing).toMatchObject({ series: 0 });
    expect(by.missing!.error).toBeUndefined();
    expect(by.invalid!.series).toBe(0);
    expect(by.invalid!.error).toMatch(/bad_data|parse error/);
    expect(by.nested).toMatchObject({ series: 1 });
    // The values, not only the series: six targets, each up.
    expect(by.nested!.samples.map((s) => s.value)).toEqual([6]);
    expect(by.up!.samples.map((s) => s.value)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(by.missing!.samples).toEqual([]);
    expect(by.k6).toMatchObject({ series: 0 });
    // A variable set narrows the selection like Grafana's picker does.
    const onlyRedis = await evaluatePanels(promUrl, { skipK6: true, dashboardsDir: dir, variables: { job: 'redis' } });
    expect(onlyRedis.find((r) => r.panel === 'up')).toMatchObject({ series: 2, expr: 'up{job=~"redis", instance=~".+"}' });
    // skipK6 leaves out the k6 expression and nothing else.
    expect(onlyRedis.map((r) => r.panel)).toEqual(['up', 'missing', 'invalid', 'nested']);
  });

  it('the local config carries the app targets’ node label (file_sd labels, honor_labels)', async () => {
    expect(await scalar('up{job="app", node="stand-in-1"}')).toBe(1);
    // honor_labels on the app job: a label the target also exports is not renamed to exported_*.
    expect((await instantQuery(promUrl, 'count({job="app", exported_node!=""})')).series).toBe(0);
  });

  it('every dashboard expression is valid PromQL to Prometheus, and the Redis and nginx panels have data', async () => {
    const all = panelExpressions();
    const res = await evaluatePanels(promUrl, { skipK6: false });
    expect(res.length).toBe(all.length);
    expect(res.filter((r) => r.error).map((r) => `${r.file} / ${r.panel}: ${r.error}`)).toEqual([]);

    // The exporters' panels find their metrics: names and labels are right.
    const exporters = res.filter((r) => r.file === 'redis-nginx.json' && !r.template.includes('session_cluster_'));
    expect(exporters.length).toBeGreaterThan(10);
    expect(exporters.filter((r) => r.series === 0).map((r) => `${r.panel} (${r.refId}): ${r.expr}`)).toEqual([]);
    // Panels on up find the scrape targets.
    for (const panel of ['Nodes up', 'Scrape targets up']) {
      expect(
        res.filter((r) => r.panel === panel).every((r) => r.series > 0),
        panel,
      ).toBe(true);
    }
    // And the numbers they show: six targets up of six; Redis and nginx up; the one key this
    // test wrote, in db0, counted once (the replica's copy is not a second key).
    const one = (panel: string, refId = 'A') => res.find((r) => r.panel === panel && r.refId === refId)!.samples.map((s) => s.value);
    const byLabel = (panel: string, label: string, refId = 'A') =>
      Object.fromEntries(res.find((r) => r.panel === panel && r.refId === refId)!.samples.map((s) => [s.labels[label], s.value]));
    expect(one('Nodes up', 'A')).toEqual([6]);
    expect(one('Nodes up', 'B')).toEqual([6]);
    expect(one('Redis up')).toEqual([1]);
    expect(one('nginx up')).toEqual([1]);
    expect(res.find((r) => r.panel === 'Redis keys by database')!.samples.map((s) => [s.labels.db, s.value])).toEqual([['db0', 1]]);
    // The store's topology: one primary, one replica, none down, no failover; AOF on both, no
    // persistence error; the replica's lag from its primary; the Sentinel sees the primary and 1 replica.
    expect([one('Redis servers by role', 'A'), one('Redis servers by role', 'B'), one('Redis servers by role', 'C')]).toEqual([[1], [1], [0]]);
    expect(one('Primaries lost or demoted in range')).toEqual([0]);
    expect(one('Persistence errors')).toEqual([0]);
    expect(byLabel('Persistence per Redis', 'redis')).toEqual({ 'redis-1': 1, 'redis-2': 1 });
    expect(byLabel('Role per Redis', 'redis')).toEqual({ 'redis-1': 1, 'redis-2': 0 });
    const lag = res.find((r) => r.panel === 'Replication lag (bytes behind the primary)')!.samples;
    expect(lag.map((s) => [s.labels.redis, s.labels.slave_port])).toEqual([['redis-1', String(replicaPort)]]);
    expect(lag[0]!.value).toBeGreaterThanOrEqual(0);
    expect(byLabel('Sentinels: the primary they agree on', 'master_address')).toEqual({ [`127.0.0.1:${redisPort}`]: 1 });
    expect(byLabel('Sentinels: the primary they agree on', 'master_address', 'B')).toEqual({ [`127.0.0.1:${redisPort}`]: 1 });
    // No session node and no k6 here: their panels are empty, as they must be (no false positives).
    const appOnly = res.filter((r) => r.template.includes('session_cluster_') && !r.template.includes('nginx_'));
    expect(appOnly.length).toBeGreaterThan(20);
    expect(appOnly.filter((r) => r.series > 0).map((r) => r.panel)).toEqual([]);
    expect(res.filter((r) => isK6Expression(r.template) && r.series > 0)).toEqual([]);

    // skipK6 leaves out exactly the k6 expressions.
    const skipped = await evaluatePanels(promUrl, { skipK6: true });
    const k6 = all.filter((e) => isK6Expression(e.template));
    expect(k6.length).toBeGreaterThan(0);
    expect(new Set(k6.map((e) => e.file))).toEqual(new Set(['sessions.json']));
    expect(skipped.length).toBe(all.length - k6.length);
    expect(skipped.some((r) => isK6Expression(r.template))).toBe(false);
  });
});
