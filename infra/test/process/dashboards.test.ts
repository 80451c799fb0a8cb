import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DASHBOARDS_DIR, isK6Expression, panelExpressions, substituteVariables } from '../../grafana/panels.js';

/**
 * Static checks of the provisioned dashboards, and grafana's dashboard-linter --strict on each
 * (with the exceptions in dashboards/.lint). Whether the panels draw data is panels.test.ts's
 * part (a real Prometheus), and the cluster integration test's (after real load).
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const FILES = ['cluster.json', 'redis-nginx.json', 'sessions.json'];

type Obj = Record<string, any>;
const load = (file: string): Obj => JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8')) as Obj;
const allPanels = (panels: Obj[] = []): Obj[] => panels.flatMap((p) => [p, ...allPanels(p.panels)]);
const queryPanels = (d: Obj): Obj[] => allPanels(d.panels).filter((p) => p.type !== 'row');

describe('provisioning', () => {
  it('the Prometheus data source has the uid, URL and interval the dashboards assume', () => {
    const ds = parse(fs.readFileSync(path.join(repo, 'infra/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as Obj;
    expect(ds.apiVersion).toBe(1);
    expect(ds.datasources).toHaveLength(1);
    expect(ds.datasources[0]).toMatchObject({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090', isDefault: true, jsonData: { timeInterval: '5s' } });
  });

  it('the dashboard provider reads the directory docker-compose.yml mounts infra/grafana/dashboards at', () => {
    const prov = parse(fs.readFileSync(path.join(repo, 'infra/grafana/provisioning/dashboards/dashboards.yml'), 'utf8')) as Obj;
    expect(prov.providers).toHaveLength(1);
    const p = prov.providers[0];
    expect(p).toMatchObject({ type: 'file', folder: 'Session cluster', options: { path: '/var/lib/grafana/dashboards' } });
    const compose = parse(fs.readFileSync(path.join(repo, 'docker-compose.yml'), 'utf8')) as Obj;
    const volumes = (compose.services?.grafana?.volumes ?? []) as string[];
    expect(volumes).toContain(`./infra/grafana/dashboards:${p.options.path}:ro,z`);
    expect(volumes).toContain('./infra/grafana/provisioning:/etc/grafana/provisioning:ro,z');
  });

  it('the directory holds exactly the three dashboards (and the linter exceptions)', () => {
    expect(fs.readdirSync(DASHBOARDS_DIR).sort()).toEqual(['.lint', ...FILES].sort());
  });
});

describe.each(FILES)('%s', (file) => {
  const text = fs.readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8');
  const d = load(file);
  const vars = (d.templating?.list ?? []) as Obj[];
  const v = (name: string) => vars.find((x) => x.name === name);

  it('is modern, self-contained Grafana JSON: no __inputs, no ${DS_*} placeholders, a fixed uid', () => {
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(d).not.toHaveProperty('__inputs');
    expect(text).not.toMatch(/\$\{?DS_/);
    expect(d.uid).toMatch(/^session-cluster-[a-z-]+$/);
    expect(d.id).toBeNull();
    expect(d.editable).toBe(false);
    expect(d.refresh).toBe('5s');
    expect(d.tags).toContain('session-cluster');
  });

  it('has the datasource variable (default: the provisioned uid) and multi-value job and instance variables', () => {
    expect(v('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus', current: { value: 'prometheus' } });
    for (const name of ['job', 'instance']) {
      expect(v(name), name).toMatchObject({ type: 'query', datasource: { uid: '${datasource}' }, multi: true, includeAll: true, allValue: '.+', refresh: 2 });
    }
    for (const q of vars.filter((x) => x.type === 'query')) expect(q.query.query, q.name).toMatch(/^label_values\(.+\)$/);
  });

  it('every panel has a unique id and title, a description, a unit and the templated data source', () => {
    const panels = allPanels(d.panels);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size, 'panel ids').toBe(ids.length);
    const qp = queryPanels(d);
    const titles = qp.map((p) => p.title);
    expect(new Set(titles).size, 'panel titles (the .lint entries match by title)').toBe(titles.length);
    expect(qp.length).toBeGreaterThan(5);
    for (const p of qp) {
      expect(p.title, `panel ${p.id}`).toMatch(/\S/);
      expect(p.description, p.title).toMatch(/\S{3}/);
      expect(['timeseries', 'stat', 'table'], p.title).toContain(p.type);
      expect(p.fieldConfig?.defaults?.unit, p.title).toMatch(/\S/);
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets) {
        expect(t.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
        expect(t.expr, p.title).toMatch(/\S/);
      }
    }
  });

  it('every rate()/irate()/increase() range is $__rate_interval ($__range for increase over the whole range)', () => {
    for (const p of queryPanels(d)) {
      for (const t of p.targets as Obj[]) {
        const calls = [...(t.expr as string).matchAll(/\b(rate|irate|increase)\s*\(/g)];
        for (const c of calls) {
          // The range of the call's selector: the first [...] after the call.
          const range = /\[([^\]]+)\]/.exec((t.expr as string).slice(c.index))?.[1];
          const allowed = c[1] === 'increase' ? ['$__rate_interval', '$__range'] : ['$__rate_interval'];
          expect(allowed, `${p.title}: ${t.expr}`).toContain(range);
        }
        const ranges = [...(t.expr as string).matchAll(/\[([^\]]+)\]/g)].map((m) => m[1]);
        for (const r of ranges) expect(['$__rate_interval', '$__range'], `${p.title}: ${t.expr}`).toContain(r);
      }
    }
  });

  it('every selector has the job and instance matchers, except on k6 metrics (pushed, no such labels)', () => {
    for (const p of queryPanels(d)) {
      for (const t of p.targets as Obj[]) {
        const expr = t.expr as string;
        if (isK6Expression(expr)) {
          expect(file, `${p.title}: k6 panels belong in the Sessions dashboard`).toBe('sessions.json');
          expect(expr, p.title).not.toMatch(/session_cluster_|nginx_|redis_|\bup\b/);
          continue;
        }
        const selectors = [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)];
        expect(selectors.length, `${p.title}: ${expr}`).toBeGreaterThan(0);
        for (const s of selectors) {
          expect(s[2], `${p.title}: ${s[0]}`).toContain('job=~"$job"');
          expect(s[2], `${p.title}: ${s[0]}`).toContain('instance=~"$instance"');
        }
      }
    }
  });

  it('every expression uses only variables that evaluatePanels knows', () => {
    expect(() => panelExpressions(DASHBOARDS_DIR)).not.toThrow();
    const mine = panelExpressions(DASHBOARDS_DIR).filter((e) => e.file === file);
    expect(mine.length).toBe(queryPanels(d).reduce((n, p) => n + p.targets.length, 0));
    for (const e of mine) expect(e.expr, e.panel).not.toMatch(/\$|\[\[/);
  });
});

describe('panel expression helpers', () => {
  it('substitutes $var, ${var}, ${var:format} and [[var]], and refuses unknown variables', () => {
    const vars = { job: 'app', __rate_interval: '30s' };
    expect(substituteVariables('rate(x{job=~"$job"}[$__rate_interval])', vars)).toBe('rate(x{job=~"app"}[30s])');
    expect(substituteVariables('x{job=~"${job:regex}", a="[[job]]"}', vars)).toBe('x{job=~"app", a="app"}');
    expect(() => substituteVariables('x{a=~"$nope"}', vars)).toThrow(/\$nope/);
  });

  it('tells k6 expressions by their metric names only', () => {
    expect(isK6Expression('sum(rate(k6_http_reqs_total[$__rate_interval]))')).toBe(true);
    expect(isK6Expression('max by (__name__) ({__name__=~"k6_login_duration_p(50|95)"})')).toBe(true);
    expect(isK6Expression('sum(up{job=~"k6_like"})')).toBe(false);
    expect(isK6Expression('session_cluster_k6_total')).toBe(false);
    expect(isK6Expression('sum(rate(session_cluster_http_requests_total{job=~"$job"}[1m]))')).toBe(false);
  });
});

// =============================================================================================
function findLinter(): string | null {
  const onPath = spawnSync('sh', ['-c', 'command -v dashboard-linter'], { encoding: 'utf8' });
  if (onPath.status === 0 && onPath.stdout.trim()) return onPath.stdout.trim();
  const gopath = spawnSync('go', ['env', 'GOPATH'], { encoding: 'utf8' });
  const dirs = [gopath.status === 0 ? gopath.stdout.trim() : '', path.join(os.homedir(), 'go')].filter(Boolean);
  for (const dir of dirs) {
    const bin = path.join(dir, 'bin', 'dashboard-linter');
    if (fs.existsSync(bin)) return bin;
  }
  return null;
}
function linter(): string {
  const bin = findLinter();
  if (!bin) {
    throw new Error(
      'dashboard-linter is not installed (not on PATH, not in $(go env GOPATH)/bin). scripts/setup.sh installs it; ' + 'see infra/grafana/README.md for the command.',
    );
  }
  return bin;
}
function lint(file: string): { ok: boolean; output: string } {
  const r = spawnSync(linter(), ['lint', '--strict', file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

describe('grafana dashboard-linter --strict', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dash-lint-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it.each(FILES)('passes on %s', (file) => {
    const r = lint(path.join(DASHBOARDS_DIR, file));
    expect(r.ok, r.output).toBe(true);
    expect(r.output).not.toMatch(/❌|⚠/);
  });

  /** A copy of a dashboard, changed by `mutate`, linted in a temp dir with or without our .lint. */
  function lintMutated(file: string, mutate: (d: Obj) => void, withLintFile: boolean): { ok: boolean; output: string } {
    const dir = fs.mkdtempSync(path.join(tmp, 'case-'));
    const d = load(file);
    mutate(d);
    fs.writeFileSync(path.join(dir, file), JSON.stringify(d));
    if (withLintFile) fs.copyFileSync(path.join(DASHBOARDS_DIR, '.lint'), path.join(dir, '.lint'));
    return lint(path.join(dir, file));
  }

  it('fails on real problems: a fixed rate range, a missing description, a missing job matcher', () => {
    const firstRate = (d: Obj) => queryPanels(d).find((p) => /rate\(/.test(p.targets[0].expr))!;
    let r = lintMutated(
      'cluster.json',
      (d) => {
        const t = firstRate(d).targets[0];
        t.expr = t.expr.replaceAll('$__rate_interval', '5m');
      },
      true,
    );
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/should use \$__rate_interval/);
    r = lintMutated('redis-nginx.json', (d) => delete queryPanels(d)[0]!.description, true);
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/missing title or description/);
    r = lintMutated(
      'sessions.json',
      (d) => {
        const t = queryPanels(d).find((p) => !isK6Expression(p.targets[0].expr))!.targets[0];
        t.expr = t.expr.replaceAll('job=~"$job", ', '');
      },
      true,
    );
    expect(r.ok, 'the .lint exceptions must not cover non-k6 panels').toBe(false);
    expect(r.output).toMatch(/job selector not found/);
  });

  it('the k6 panels pass only thanks to the .lint exceptions, which cover nothing else', () => {
    const r = lintMutated('sessions.json', () => {}, false);
    expect(r.ok).toBe(false);
    const flagged = new Set([...r.output.matchAll(/panel '([^']+)'/g)].map((m) => m[1]));
    const k6Panels = new Set(
      queryPanels(load('sessions.json'))
        .filter((p) => p.targets.some((t: Obj) => isK6Expression(t.expr)))
        .map((p) => p.title),
    );
    expect(k6Panels.size).toBeGreaterThan(0);
    expect(flagged).toEqual(k6Panels);
    const problems = r.output.split('\n').filter((l) => l.includes('❌') || l.includes('⚠'));
    const k6Targets = queryPanels(load('sessions.json'))
      .flatMap((p) => p.targets)
      .filter((t: Obj) => isK6Expression(t.expr)).length;
    expect(problems.length).toBe(2 * k6Targets); // one job and one instance finding per k6 target
    for (const l of problems) expect(l).toMatch(/(job|instance) selector not found/);
  });
});
