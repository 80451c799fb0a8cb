import fs from 'node:fs';
import path from 'node:path';
import { localPrometheusConfig, type JobTargets } from '../prometheus-config.js';
import type { JOBS } from '../topology.js';
import { REPO_ROOT } from './state.js';

/** Writes this run's Prometheus configuration (compose's prometheus.yml, local targets) under `<dir>/prometheus`; returns the config file. */
export function writePrometheusConfig(dir: string, targets: Record<keyof typeof JOBS, JobTargets>): string {
  const promDir = path.join(dir, 'prometheus');
  const targetsDir = path.join(promDir, 'targets');
  fs.mkdirSync(targetsDir, { recursive: true });
  const compose = fs.readFileSync(path.join(REPO_ROOT, 'infra/prometheus/prometheus.yml'), 'utf8');
  const { yaml, files } = localPrometheusConfig(compose, targets, targetsDir);
  for (const [file, content] of Object.entries(files)) fs.writeFileSync(file, content);
  const configFile = path.join(promDir, 'prometheus.yml');
  fs.writeFileSync(configFile, yaml);
  return configFile;
}
