import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The PromQL behind every panel of the dashboards in infra/grafana/dashboards, with Grafana's
 * template variables replaced by concrete values, and its evaluation against a real Prometheus.
 * The tests run no Grafana server: this is how the dashboards are shown to draw data
 * (infra/grafana/README.md). The cluster integration test calls evaluatePanels after driving load.
 */

export const DASHBOARDS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dashboards');

/**
 * Values for the variables the dashboards use: what Grafana sends when "All" is selected, and a
 * $__rate_interval of 30 s (Grafana's is max(4 x the 5 s scrape interval, step + scrape interval),
 * 20-30 s on these dashboards). $__range is the width of the dashboard's time range.
 */
export const DEFAULT_VARIABLES: Readonly<Record<string, string>> = {
  job: '.+',
  instance: '.+',
  node: '.+',
  __rate_interval: '30s',
  __interval: '5s',
  __range: '1h',
};

export interface PanelExpression {
  /** Dashboard title. */
  dashboard: string;
  /** Dashboard file name, e.g. cluster.json. */
  file: string;
  /** Panel title. */
  panel: string;
  panelId: number;
  /** The target's refId (A, B, ...): a panel may have several expressions. */
  refId: string;
  /** The expression with the variables substituted. */
  expr: string;
  /** The expression as the dashboard has it. */
  template: string;
}

export interface PanelEvaluation extends PanelExpression, QueryResult {}

/** One element of an instant query's result: its labels and its value (NaN stays NaN). */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface QueryResult {
  /** Number of series (vector/matrix elements; 1 for a scalar) the instant query returned. */
  series: number;
  /** The values of an instant vector or scalar, so a test can check the number a panel shows. */
  samples: Sample[];
  /** Prometheus's error (or the HTTP failure) if the query failed; series is 0 then. */
  error?: string;
}

interface RawTarget {
  expr?: unknown;
  refId?: unknown;
  hide?: unknown;
}
interface RawPanel {
  id?: unknown;
  title?: unknown;
  type?: unknown;
  targets?: RawTarget[];
  panels?: RawPanel[];
}

const VARIABLE = /\$\{([A-Za-z0-9_.]+)(?::[^}]*)?\}|\[\[([A-Za-z0-9_.]+)(?::[^\]]*)?\]\]|\$([A-Za-z0-9_]+)/g;

/** Replaces $var, ${var}, ${var:format} and [[var]]; throws on a variable with no value. */
export function substituteVariables(expr: string, variables: Readonly<Record<string, string>>): string {
  return expr.replace(VARIABLE, (whole, a?: string, b?: string, c?: string) => {
    const name = a ?? b ?? c ?? '';
    const value = Object.hasOwn(variables, name) ? variables[name] : undefined;
    if (value === undefined) throw new Error(`no value for the variable ${whole}`);
    return value;
  });
}

/**
 * Every target expression of every dashboard (*.json) in `dashboardsDir`, rows' nested panels
 * included, in file and panel order, with variables substituted (`variables` overrides
 * DEFAULT_VARIABLES, e.g. { job: 'app' }). Hidden targets are included: they are still queries.
 */
export function panelExpressions(dashboardsDir: string = DASHBOARDS_DIR, variables: Readonly<Record<string, string>> = {}): PanelExpression[] {
  const vars = { ...DEFAULT_VARIABLES, ...variables };
  const out: PanelExpression[] = [];
  const files = fs
    .readdirSync(dashboardsDir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  for (const file of files) {
    const dash = JSON.parse(fs.readFileSync(path.join(dashboardsDir, file), 'utf8')) as { title?: unknown; panels?: RawPanel[] };
    const dashboard = typeof dash.title === 'string' ? dash.title : file;
    const walk = (panels: RawPanel[] | undefined): void => {
      for (const p of panels ?? []) {
        for (const t of p.targets ?? []) {
          if (typeof t.expr !== 'string' || t.expr.trim() === '') continue;
          const panel = typeof p.title === 'string' ? p.title : `panel ${String(p.id)}`;
          let expr: string;
          try {
            expr = substituteVariables(t.expr, vars);
          } catch (err) {
            throw new Error(`${file}: panel "${panel}": ${(err as Error).message}`, { cause: err });
          }
          out.push({ dashboard, file, panel, panelId: Number(p.id), refId: String(t.refId ?? ''), expr, template: t.expr });
        }
        walk(p.panels);
      }
    };
    walk(dash.panels);
  }
  return out;
}

/**
 * Whether an expression names a metric that starts with `k6_`: a bare metric name outside string
 * literals, or a `__name__` matcher whose value starts with k6_. Those metrics exist only while k6
 * pushes them through remote write (infra/grafana/dashboards/.lint says why they are special).
 */
export function isK6Expression(expr: string): boolean {
  for (const m of expr.matchAll(/__name__\s*(?:=~|=)\s*"([^"]*)"/g)) if (m[1]?.startsWith('k6_')) return true;
  const unquoted = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  return /(?<![A-Za-z0-9_:])k6_[A-Za-z0-9_:]*/.test(unquoted);
}

export interface EvaluateOptions {
  /**
   * Leave out the expressions that name a k6_ metric (isK6Expression): set it when k6 did not push
   * to this Prometheus in the run. Nothing else is ever left out.
   */
  skipK6: boolean;
  dashboardsDir?: string;
  /** Overrides of DEFAULT_VARIABLES. */
  variables?: Readonly<Record<string, string>>;
  /** Evaluation time (default: now). */
  time?: Date;
  /** Per-query timeout, ms (default 10 s). */
  timeoutMs?: number;
}

/**
 * Evaluates every panel expression as an instant query against `promUrl` (e.g.
 * http://127.0.0.1:9090) and reports how many series each returned. An expression with a wrong
 * metric or label name comes back with 0 series; invalid PromQL comes back with `error`.
 * The skipped k6 expressions (opts.skipK6) are not in the result.
 */
export async function evaluatePanels(promUrl: string, opts: EvaluateOptions): Promise<PanelEvaluation[]> {
  const exprs = panelExpressions(opts.dashboardsDir ?? DASHBOARDS_DIR, opts.variables ?? {}).filter((e) => !(opts.skipK6 && isK6Expression(e.template)));
  const out: PanelEvaluation[] = [];
  for (const e of exprs) out.push({ ...e, ...(await instantQuery(promUrl, e.expr, opts.time, opts.timeoutMs)) });
  return out;
}

/** One instant query: the series it returned and their values, or Prometheus's error. */
export async function instantQuery(promUrl: string, expr: string, time?: Date, timeoutMs = 10_000): Promise<QueryResult> {
  const body = new URLSearchParams({ query: expr });
  if (time) body.set('time', String(time.getTime() / 1000));
  let res: Response;
  try {
    res = await fetch(new URL('/api/v1/query', promUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    return { series: 0, samples: [], error: `request failed: ${(err as Error).message}` };
  }
  const text = await res.text();
  let json: { status?: string; error?: string; errorType?: string; data?: { resultType?: string; result?: unknown } };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    return { series: 0, samples: [], error: `HTTP ${res.status}: ${text.slice(0, 200)}` };
  }
  if (json.status !== 'success') return { series: 0, samples: [], error: `${json.errorType ?? `HTTP ${res.status}`}: ${json.error ?? text.slice(0, 200)}` };
  const result = json.data?.result;
  switch (json.data?.resultType) {
    case 'vector': {
      const rows = Array.isArray(result) ? (result as Array<{ metric: Record<string, string>; value: [number, string] }>) : [];
      return { series: rows.length, samples: rows.map((r) => ({ labels: r.metric, value: Number(r.value[1]) })) };
    }
    case 'matrix':
      return { series: Array.isArray(result) ? result.length : 0, samples: [] };
    case 'scalar':
      return { series: 1, samples: [{ labels: {}, value: Number((result as [number, string])[1]) }] };
    case 'string':
      return { series: 1, samples: [] };
    default:
      return { series: 0, samples: [], error: `unexpected result type ${String(json.data?.resultType)}` };
  }
}
