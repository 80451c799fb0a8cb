import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { localPrometheusConfig } from '../../../services/cluster/src/prometheus-config.js';
import { CONTAINER_PORTS, JOBS } from '../../../services/cluster/src/topology.js';

/**
 * infra/prometheus/prometheus.yml (compose) and the local config generated from it, both checked by
 * the real promtool. promtool does not resolve the compose DNS names; it checks syntax and
 * semantics (and reads file_sd files when they exist).
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const COMPOSE_CONFIG = path.resolve(here, '../../prometheus/prometheus.yml');
const composeText = fs.readFileSync(COMPOSE_CONFIG, 'utf8');

type Obj = Record<string, any>;

function promtool(...args: string[]): { ok: boolean; output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`promtool could not run (${r.error.message}): scripts/setup.sh test builds the pinned release into .run/bin`);
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

const localTargets = {
  app: [{ target: '127.0.0.1:41001', labels: { node: 'app-1' } }, { target: '127.0.0.1:41002', labels: { node: 'app-2' } }, '127.0.0.1:41003'],
  nginx: ['127.0.0.1:41113'],
  redis: [{ target: '127.0.0.1:46379', labels: { redis: 'redis', exporter: '127.0.0.1:41121' } }],
  sentinel: [],
  prometheus: ['127.0.0.1:49090'],
};

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'prom-config-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Writes a generated config and its target files under a fresh directory; returns the config path. */
function writeLocal(name: string, text = composeText, targets: Record<string, any> = localTargets): { config: string; files: Record<string, string>; yaml: string } {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  const { yaml, files } = localPrometheusConfig(text, targets, path.join(dir, 'targets'));
  fs.mkdirSync(path.join(dir, 'targets'), { recursive: true });
  for (const [file, content] of Object.entries(files)) fs.writeFileSync(file, content);
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(config, yaml);
  return { config, files, yaml };
}

describe('the compose config (infra/prometheus/prometheus.yml)', () => {
  it('passes promtool check config', () => {
    const r = promtool('check', 'config', COMPOSE_CONFIG);
    expect(r.ok, r.output).toBe(true);
    expect(r.output).toContain('SUCCESS');
  });

  it('scrapes every 5 s the four jobs of topology.ts, at the compose services and ports', () => {
    const doc = parse(composeText) as Obj;
    expect(doc.global).toMatchObject({ scrape_interval: '5s', evaluation_interval: '5s' });
    const jobs = doc.scrape_configs as Obj[];
    expect(jobs.map((j) => j.job_name).sort()).toEqual(Object.values(JOBS).sort());
    const job = (name: string) => jobs.find((j) => j.job_name === name)!;
    // Compose: the replicas by container name, from the file the container's entrypoint writes
    // (infra/prometheus/docker-entrypoint.sh), so a killed replica stays a target (up == 0).
    expect(job(JOBS.app).file_sd_configs).toEqual([{ files: ['/prometheus/file_sd/app.json'], refresh_interval: '5s' }]);
    // The nodes' own `node` label must survive as `node` (not exported_node) on every series.
    expect(job(JOBS.app).honor_labels).toBe(true);
    expect(job(JOBS.nginx).static_configs).toEqual([{ targets: [`nginx-exporter:${CONTAINER_PORTS.nginxExporter}`] }]);
    // The store: each Redis (and each Sentinel) a target of its own, scraped through the one
    // exporter in multi-target mode (/scrape?target=redis://host:port), instance = its address.
    for (const store of [JOBS.redis, JOBS.sentinel]) {
      expect(job(store).file_sd_configs).toEqual([{ files: [`/prometheus/file_sd/${store}.json`], refresh_interval: '5s' }]);
      expect(job(store).metrics_path).toBe('/scrape');
      expect(job(store).relabel_configs).toEqual([
        { source_labels: ['__address__'], target_label: '__param_target', replacement: 'redis://$1' },
        { source_labels: ['__address__'], target_label: 'instance' },
        { source_labels: ['exporter'], target_label: '__address__' },
        { action: 'labeldrop', regex: 'exporter' },
      ]);
    }
    expect(job(JOBS.prometheus).static_configs).toEqual([{ targets: [`localhost:${CONTAINER_PORTS.prometheus}`] }]);
  });

  it('a broken config fails promtool (the check is not a no-op)', () => {
    const broken = path.join(tmp, 'broken.yml');
    // A scrape timeout longer than the interval: valid YAML, invalid Prometheus config.
    fs.writeFileSync(broken, composeText.replace('scrape_timeout: 4s', 'scrape_timeout: 30s'));
    const r = promtool('check', 'config', broken);
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/scrape timeout greater than scrape interval/);
    fs.writeFileSync(broken, `${composeText}\n  - job_name: app\n    static_configs: [{targets: ['x:1']}]\n`);
    expect(promtool('check', 'config', broken).output).toMatch(/found multiple scrape configs with job name "app"/);
  });
});

describe('localPrometheusConfig (services/cluster/src/prometheus-config.ts)', () => {
  it('generates a config and target files that pass promtool check config', () => {
    const { config, files } = writeLocal('ok');
    const r = promtool('check', 'config', config);
    expect(r.ok, r.output).toBe(true);
    expect(r.output).toContain('SUCCESS');
    // promtool reads the file_sd files it can find and only warns about missing ones: none here.
    expect(r.output).not.toMatch(/WARNING/);
    expect(
      Object.keys(files)
        .map((f) => path.basename(f))
        .sort(),
    ).toEqual(['app.json', 'nginx.json', 'prometheus.json', 'redis.json', 'sentinel.json']);
  });

  it('keeps globals, job names and job settings, and swaps only the discovery for file_sd', () => {
    const { yaml, files } = writeLocal('shape');
    const compose = parse(composeText) as Obj;
    const local = parse(yaml) as Obj;
    expect(local.global).toEqual(compose.global);
    const dir = path.join(tmp, 'shape', 'targets');
    for (const job of compose.scrape_configs as Obj[]) {
      const gen = (local.scrape_configs as Obj[]).find((j) => j.job_name === job.job_name)!;
      const { dns_sd_configs: _d, static_configs: _s, file_sd_configs: _f, ...rest } = job;
      const { file_sd_configs, ...genRest } = gen;
      expect(genRest).toEqual(rest);
      expect(file_sd_configs).toEqual([{ files: [path.join(dir, `${job.job_name}.json`)], refresh_interval: '5s' }]);
      expect(Object.keys(gen).filter((k) => k === 'static_configs' || k.endsWith('_sd_configs'))).toEqual(['file_sd_configs']);
    }
    // Prometheus file_sd JSON: targets grouped by their labels, in order.
    expect(JSON.parse(files[path.join(dir, 'app.json')]!)).toEqual([
      { targets: ['127.0.0.1:41001'], labels: { node: 'app-1' } },
      { targets: ['127.0.0.1:41002'], labels: { node: 'app-2' } },
      { targets: ['127.0.0.1:41003'] },
    ]);
    expect(JSON.parse(files[path.join(dir, 'redis.json')]!)).toEqual([{ targets: ['127.0.0.1:46379'], labels: { exporter: '127.0.0.1:41121', redis: 'redis' } }]);
    expect(JSON.parse(files[path.join(dir, 'sentinel.json')]!)).toEqual([]);
  });

  it('keeps relabel rules, intervals and other settings of any job, and replaces every kind of discovery', () => {
    const text = `
global: {scrape_interval: 15s}
scrape_configs:
  - job_name: app
    scrape_interval: 2s
    scrape_timeout: 1s
    metrics_path: /m
    relabel_configs:
      - source_labels: [__address__]
        regex: '(.*):\\d+'
        target_label: host
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop
    dns_sd_configs: [{names: [app], type: A, port: 9100, refresh_interval: 7s}]
    static_configs: [{targets: ['extra:1']}]
  - job_name: other
    kubernetes_sd_configs: [{role: pod}]
`;
    const { yaml, config } = writeLocal('custom', text, { app: ['127.0.0.1:1'], other: [] });
    const jobs = (parse(yaml) as Obj).scrape_configs as Obj[];
    expect(jobs[0]).toMatchObject({
      job_name: 'app',
      scrape_interval: '2s',
      scrape_timeout: '1s',
      metrics_path: '/m',
      relabel_configs: [{ source_labels: ['__address__'], regex: '(.*):\\d+', target_label: 'host' }],
      metric_relabel_configs: [{ source_labels: ['__name__'], regex: 'go_.*', action: 'drop' }],
      file_sd_configs: [{ refresh_interval: '7s' }],
    });
    expect(jobs[0]).not.toHaveProperty('dns_sd_configs');
    expect(jobs[0]).not.toHaveProperty('static_configs');
    expect(jobs[1]).toEqual({ job_name: 'other', file_sd_configs: [{ files: [path.join(tmp, 'custom', 'targets', 'other.json')], refresh_interval: '15s' }] });
    const r = promtool('check', 'config', config);
    expect(r.ok, r.output).toBe(true);
  });

  it('refuses targets that do not match the compose jobs, and malformed targets', () => {
    const { prometheus: _p, ...missing } = localTargets;
    expect(() => localPrometheusConfig(composeText, missing, tmp)).toThrow(/no local targets given for job "prometheus"/);
    expect(() => localPrometheusConfig(composeText, { ...localTargets, k6: ['127.0.0.1:1'] }, tmp)).toThrow(/job\(s\) the config lacks: k6/);
    expect(() => localPrometheusConfig(composeText, { ...localTargets, redis: ['http://127.0.0.1:1/metrics'] }, tmp)).toThrow(/is not host:port/);
    expect(() => localPrometheusConfig(composeText, { ...localTargets, redis: ['127.0.0.1:1', '127.0.0.1:1'] }, tmp)).toThrow(/listed twice/);
    expect(() => localPrometheusConfig(composeText, { ...localTargets, app: [{ target: '127.0.0.1:1', labels: { instance: 'x' } }] }, tmp)).toThrow(/Prometheus's own/);
    expect(() => localPrometheusConfig(composeText, { ...localTargets, app: [{ target: '127.0.0.1:1', labels: { '1node': 'x' } }] }, tmp)).toThrow(
      /not a usable target label name/,
    );
    expect(() => localPrometheusConfig('global: {}\n', localTargets, tmp)).toThrow(/no scrape_configs/);
  });

  it('a corrupt target file fails promtool (the generated files are really checked)', () => {
    const { config, files } = writeLocal('corrupt');
    const appFile = Object.keys(files).find((f) => f.endsWith('app.json'))!;
    // A label value that is not a string. (A label name such as 1node was the corruption here
    // until Prometheus 3, which takes any UTF-8 name; localPrometheusConfig still refuses it.)
    fs.writeFileSync(appFile, '[{"targets": ["127.0.0.1:1"], "labels": {"node": 1}}]');
    const r = promtool('check', 'config', config);
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/cannot unmarshal number into .*LabelValue/);
  });
});
