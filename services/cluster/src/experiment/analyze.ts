import fs from 'node:fs';
import readline from 'node:readline';
import zlib from 'node:zlib';
import type { FailureEvent, LossEvent } from '@session-cluster/loadtest/claims';

/**
 * Per-second time series from k6's JSON lines output (`--out json=FILE[.gz]`): one line per
 * sample, `{"type":"Point","metric":NAME,"data":{"time":ISO,"value":N,"tags":{…}}}`.
 */
export interface Second {
  /** Seconds since the first sample. */
  t: number;
  requests: number;
  /** requests_by_node, by the node that answered (X-Served-By). */
  byNode: Record<string, number>;
  failed: number;
  failedByKind: Record<string, number>;
  lost: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** A lost session: when, the node that last served it, the node that answered 401, and the VU. */
export type Loss = LossEvent;

export interface Series {
  /** Epoch ms of the first sample: second 0. */
  origin: number;
  seconds: Second[];
  losses: Loss[];
  /** Every failed request, with its kind (login/read/write), status (0 = network error), VU and time. */
  failures: FailureEvent[];
  /** Sessions started (logins), with the node that created them. */
  logins: { t: number; node: string }[];
  /** requests_by_node samples with their time, for shares over any window. */
  served: { t: number; node: string }[];
  /** http_reqs by the script's `kind` tag: login, read, write. */
  requestsByKind: Record<string, number>;
}

const WANTED = new Set(['http_reqs', 'http_req_duration', 'requests_by_node', 'failed_requests', 'sessions_lost', 'sessions_started']);

interface Point {
  metric: string;
  type: string;
  data: { time: string; value: number; tags?: Record<string, string> };
}

export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  // Nearest-rank on a sorted copy, the way a person checks it by hand.
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export async function readSeries(file: string): Promise<Series> {
  let input: NodeJS.ReadableStream = fs.createReadStream(file);
  if (file.endsWith('.gz')) input = input.pipe(zlib.createGunzip());
  const points: { t: number; metric: string; value: number; tags: Record<string, string> }[] = [];
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  for await (const line of rl) {
    // Cheap filter before parsing: most lines are metrics the report does not use.
    const m = /^\{"metric":"([a-z_]+)","type":"Point"/.exec(line);
    if (!m || !WANTED.has(m[1]!)) continue;
    const p = JSON.parse(line) as Point;
    points.push({ t: Date.parse(p.data.time), metric: p.metric, value: p.data.value, tags: p.data.tags ?? {} });
  }
  if (points.length === 0) return { origin: 0, seconds: [], losses: [], failures: [], logins: [], served: [], requestsByKind: {} };
  let origin = Infinity;
  let end = -Infinity;
  for (const p of points) {
    origin = Math.min(origin, p.t);
    end = Math.max(end, p.t);
  }
  const rel = (t: number) => (t - origin) / 1000;
  const last = Math.floor(rel(end));
  const seconds: Second[] = [];
  const durations: number[][] = [];
  for (let t = 0; t <= last; t++) {
    seconds.push({ t, requests: 0, byNode: {}, failed: 0, failedByKind: {}, lost: 0, p50: null, p95: null, p99: null });
    durations.push([]);
  }
  const series: Series = { origin, seconds, losses: [], failures: [], logins: [], served: [], requestsByKind: {} };
  for (const p of points) {
    const t = rel(p.t);
    const i = Math.floor(t);
    const s = seconds[i]!;
    switch (p.metric) {
      case 'http_reqs': {
        s.requests += p.value;
        const kind = p.tags.kind ?? 'other';
        series.requestsByKind[kind] = (series.requestsByKind[kind] ?? 0) + p.value;
        break;
      }
      case 'http_req_duration':
        durations[i]!.push(p.value);
        break;
      case 'requests_by_node': {
        const node = p.tags.node ?? '(none)';
        s.byNode[node] = (s.byNode[node] ?? 0) + p.value;
        series.served.push({ t, node });
        break;
      }
      case 'failed_requests':
        if (p.value > 0) {
          const kind = p.tags.kind ?? 'unknown';
          s.failed += p.value;
          s.failedByKind[kind] = (s.failedByKind[kind] ?? 0) + p.value;
          // `waited`: how long the request was out before it failed (a timeout: 10 s).
          const waited = Number(p.tags.waited);
          series.failures.push({ t, sent: Number.isFinite(waited) ? Math.max(0, t - waited) : t, kind, status: p.tags.status ?? '?', vu: p.tags.vu ?? '?' });
        }
        break;
      case 'sessions_lost':
        if (p.value > 0) {
          s.lost += p.value;
          series.losses.push({ t, node: p.tags.node ?? 'unknown', answeredBy: p.tags.answered_by ?? 'unknown', answer: p.tags.answer ?? 'unknown', vu: p.tags.vu ?? '?' });
        }
        break;
      case 'sessions_started':
        series.logins.push({ t, node: p.tags.node ?? 'unknown' });
        break;
    }
  }
  for (const [i, d] of durations.entries()) {
    d.sort((a, b) => a - b);
    const s = seconds[i]!;
    s.p50 = percentile(d, 50);
    s.p95 = percentile(d, 95);
    s.p99 = percentile(d, 99);
  }
  return series;
}

/** Each node's fraction of the requests answered in [from, to) seconds (rounded to 3 places). */
export function shares(series: Series, nodes: string[], from: number, to: number): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(nodes.map((n) => [n, 0]));
  let total = 0;
  for (const s of series.served) {
    if (s.t < from || s.t >= to) continue;
    counts[s.node] = (counts[s.node] ?? 0) + 1;
    total++;
  }
  return Object.fromEntries(Object.entries(counts).map(([n, c]) => [n, total ? Math.round((c / total) * 1000) / 1000 : 0]));
}
