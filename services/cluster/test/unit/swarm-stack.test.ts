import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { REPO_ROOT } from '../../src/cluster.js';
import { APP_HEALTHCHECK, DRAIN_DELAY_S, interpolate, SECRET_NAME, stackDocument } from '../../src/swarm/stack.js';
import { stackImages } from '../../src/swarm/swarm.js';

// The swarm stack is made from the compose files at every deploy (swarm/stack.ts): what the two
// paths share comes from docker-compose.yml and docker-compose.sentinel.yml, and only what a swarm
// needs differently is written in stack.ts.
type Service = Record<string, any>;
const hosts = ['h1', 'h2', 'h3'];
const stack = (mode: 'shared' | 'sticky' = 'shared', extra = {}) =>
  stackDocument({ repoRoot: REPO_ROOT, mode, replicas: 3, hosts, ...extra }) as {
    services: Record<string, Service>;
    secrets: Record<string, unknown>;
    configs: Record<string, { file: string }>;
  };
const compose = YAML.parse(fs.readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
const sentinelOverlay = YAML.parse(fs.readFileSync(path.join(REPO_ROOT, 'docker-compose.sentinel.yml'), 'utf8')) as { services: Record<string, Service> };

describe('the swarm stack', () => {
  it('takes each image, command and entrypoint from the compose files', () => {
    const s = stack().services;
    for (const name of ['app', 'redis', 'nginx', 'prometheus', 'nginx-exporter', 'redis-exporter']) expect(s[name]!.image, name).toBe(compose.services[name]!.image);
    expect(s['redis-replica-1']!.image).toBe(sentinelOverlay.services['redis-replica']!.image);
    expect(s.sentinel!.entrypoint).toEqual(sentinelOverlay.services.sentinel!.entrypoint);
    expect(s.nginx!.entrypoint).toEqual(compose.services.nginx!.entrypoint);
    // The Sentinel overlay's primary command (diskless sync), with its variables filled in.
    expect(s.redis!.command).toEqual(interpolate(sentinelOverlay.services.redis!.command, {}));
    expect(s['redis-replica-2']!.command).toEqual(interpolate(sentinelOverlay.services['redis-replica']!.command, {}));
    // Each Redis starts through infra/redis/start.sh (it asks the Sentinels), a config where compose mounts it.
    const startSh = (sentinelOverlay.services.redis!.entrypoint as string[]).at(-1)!;
    for (const r of ['redis', 'redis-replica-1', 'redis-replica-2']) {
      expect(s[r]!.entrypoint, r).toEqual(sentinelOverlay.services.redis!.entrypoint);
      const c = (s[r]!.configs as Array<{ source: string; target: string }>).find((x) => x.target === startSh);
      expect(stack().configs[c!.source]!.file, r).toBe(path.join(REPO_ROOT, 'infra/redis/start.sh'));
    }
    // Every environment variable compose gives the app, with the mode asked for.
    for (const key of Object.keys(compose.services.app!.environment)) expect(s.app!.environment, key).toHaveProperty(key);
    expect(stack('sticky').services.app!.environment.SESSION_MODE).toBe('sticky');
    expect(stack('sticky').services.nginx!.environment.SESSION_MODE).toBe('sticky');
    expect(s.app!.environment.REDIS_SENTINELS).toBe(sentinelOverlay.services.app!.environment.REDIS_SENTINELS);
    expect(stackImages(stack())).toEqual([...new Set(Object.values(stack().services).map((x) => x.image as string))].sort());
  });

  it('runs without virtual IPs (no IPVS): every service is dnsrr, nginx publishes on each host', () => {
    const s = stack().services;
    for (const [name, svc] of Object.entries(s)) expect(svc.deploy.endpoint_mode, name).toBe('dnsrr');
    expect(s.nginx!.deploy.mode).toBe('global');
    expect(s.nginx!.ports).toEqual([{ target: 8080, published: 8080, protocol: 'tcp', mode: 'host' }]);
    expect(s.nginx!.environment).toMatchObject({ APP_HOST: 'app', APP_REPLICA_PREFIX: 'app-', RESOLVER: '127.0.0.11', SERVER_PARAMS: 'resolve' });
  });

  it('names each app task after its slot (the route cookie and X-Served-By), spreads them, and updates one at a time, start-first', () => {
    const app = stack().services.app!;
    expect(app.hostname).toBe('app-{{.Task.Slot}}');
    expect(app.environment.NODE_ID).toBe('app-{{.Task.Slot}}');
    expect(app.deploy).toMatchObject({ replicas: 3, placement: { preferences: [{ spread: 'node.id' }] }, update_config: { parallelism: 1, order: 'start-first' } });
    // A stopping node keeps accepting past nginx's re-resolution; the deadline and grace period cover it.
    expect(Number(app.environment.SHUTDOWN_DELAY)).toBe(DRAIN_DELAY_S);
    expect(DRAIN_DELAY_S).toBeGreaterThan(5);
    expect(Number(app.environment.SHUTDOWN_TIMEOUT)).toBeGreaterThan(DRAIN_DELAY_S);
    expect(parseInt(app.stop_grace_period, 10)).toBeGreaterThan(Number(app.environment.SHUTDOWN_TIMEOUT));
    // Readiness once (a task enters the service's DNS when healthy), then liveness: a swarm
    // replaces a task whose check fails. The command itself: test/process/swarm-healthcheck.test.ts.
    expect(app.healthcheck.test).toEqual(['CMD', 'node', '-e', APP_HEALTHCHECK]);
    expect(JSON.stringify(stack().services.sentinel!.healthcheck)).not.toContain('ckquorum');
  });

  it('puts the Redis primary and each replica on a host of its own, and a Sentinel on every host', () => {
    const s = stack().services;
    const host = (name: string) => s[name]!.deploy.placement.constraints[0];
    expect([host('redis'), host('redis-replica-1'), host('redis-replica-2')]).toEqual(hosts.map((h) => `node.hostname == ${h}`));
    expect(s.sentinel!.deploy.mode).toBe('global');
    expect(s.prometheus!.environment.SENTINEL_TARGETS).toBe('sentinel-h1:26379 sentinel-h2:26379 sentinel-h3:26379');
    expect(() => stackDocument({ repoRoot: REPO_ROOT, mode: 'shared', replicas: 3, hosts: ['h1', 'h2'] })).toThrow(/needs 3 hosts/);
  });

  it('gives the secret as a swarm secret, and the repository files as configs', () => {
    const doc = stack();
    expect(doc.secrets).toEqual({ [SECRET_NAME]: { external: true } });
    expect(doc.services.app!.environment.SESSION_SECRETS_FILE).toBe(`/run/secrets/${SECRET_NAME}`);
    expect(doc.services.app!.secrets).toEqual([{ source: SECRET_NAME, target: SECRET_NAME, uid: '1000', gid: '1000', mode: 0o400 }]);
    for (const c of Object.values(doc.configs)) expect(fs.existsSync(c.file), c.file).toBe(true);
    expect(JSON.stringify(doc)).not.toMatch(/\.\/infra|:ro,z/); // no bind mount of the repository
  });

  it('passes extra settings on: app environment, redis-server arguments, services left out', () => {
    const doc = stack('shared', { appEnv: { REDIS_WAIT_REPLICAS: '1' }, redisArgs: ['--min-replicas-to-write', '1'], without: ['prometheus'] });
    expect(doc.services.app!.environment.REDIS_WAIT_REPLICAS).toBe('1');
    for (const r of ['redis', 'redis-replica-1', 'redis-replica-2']) expect(doc.services[r]!.command.slice(-2), r).toEqual(['--min-replicas-to-write', '1']);
    expect(doc.services.prometheus).toBeUndefined();
  });

  it('interpolates variables as compose does', () => {
    expect(interpolate('${A:-x} ${B-y} ${C} ${D:-}', { A: '', B: '', C: 'c' })).toBe('x  c ');
    expect(interpolate(['${A:-x}', { k: '${B}' }], { A: 'a', B: 'b' })).toEqual(['a', { k: 'b' }]);
  });
});
