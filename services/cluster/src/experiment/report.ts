import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { shares } from './analyze.js';
import { plotRun } from './plot.js';
import { judge, type Claim, type JudgeInput } from '@session-cluster/loadtest/claims';
import type { K6Summary, RunOutcome } from './run.js';

/**
 * One run in summary.json. Numbers come from k6's output (summary data and JSON lines). The claim
 * is judged by loadtest/lib/claims.js, the one definition of what each mode must show, which k6's
 * thresholds come from as well.
 */
/** One run of the experiment: what the judge reads (JudgeInput, defined with the claims) and the rest of the report. */
export interface RunSummary extends JudgeInput {
  /** mode, or mode-N when runs repeat (`--repeat`). */
  label: string;
  /** Where it ran: the local cluster or the compose stack (`--target`). */
  target: string;
  nodes: number;
  durationS: number;
  requests: number;
  failedRequests: number;
  failedByKind: { read: number; write: number; login: number; noSession: number };
  /** The store under the run (shared mode: single Redis or Sentinel) and Redis persistence (null without Redis). */
  store: string;
  redisPersistence: string | null;
  /** Node settings given with --env (e.g. REDIS_WAIT_REPLICAS=1). */
  nodeSettings: Record<string, string>;
  /** Swarm: extra redis-server arguments (--min-replicas-to-write 1 --min-replicas-max-lag 4); [] if none. */
  redisArgs: string[];
  /** Lost between the kill and the restarted node's readiness (or the end), and after that. */
  sessionsLostDuringOutage: number;
  sessionsLostAfterRestart: number;
  /** Lost sessions by the node that last served them. */
  sessionsLostByNode: Record<string, number>;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Seconds from `start` of the killed node to its readiness (null: no restart, or it did not come back). */
  restartToReadyS: number | null;
  /** A copy of the credential taken before logout is refused after it (the probe, probe.ts). */
  revokesStolenCredential: boolean | null;
  /** Bytes of session state a client sends with every request: the Cookie header, or Authorization: Bearer. */
  stateBytesPerRequest: number | null;
  /** Bytes one session occupies on the server (0 where nothing is stored). */
  serverBytesPerSession: number | null;
  shareBeforeKill: Record<string, number>;
  /** From the kill until the restarted node is ready (or the end). */
  shareAfterKill: Record<string, number>;
  /** From the restarted node's readiness to the end. */
  shareAfterRestart: Record<string, number> | null;
  /** k6's exit code, and each threshold it ran (metric -> source -> passed). */
  k6: { exitCode: number | null; thresholdsPassed: boolean; thresholds: Record<string, Record<string, boolean>> };
  claim: Claim;
  files: { plot: string; html: string; k6Summary: string; k6Json: string; k6Log: string; logs: string };
}

export interface Summary {
  generatedAt: string;
  command: string;
  machine: { cpus: number; node: string; k6: string };
  runs: RunSummary[];
  /** Per mode, over its runs (more than one with --repeat): the lowest and highest of each figure. */
  spread: Record<string, Spread>;
}

export interface Spread {
  runs: number;
  requests: [number, number];
  p50Ms: [number, number];
  p95Ms: [number, number];
  p99Ms: [number, number];
  sessionsLost: [number, number];
  failedRequests: [number, number];
}

/** The lowest and highest of each headline figure, per mode. */
export function spreadOf(runs: RunSummary[]): Record<string, Spread> {
  const out: Record<string, Spread> = {};
  for (const mode of [...new Set(runs.map((r) => r.mode))]) {
    const rs = runs.filter((r) => r.mode === mode);
    const range = (f: (r: RunSummary) => number): [number, number] => [Math.min(...rs.map(f)), Math.max(...rs.map(f))];
    out[mode] = {
      runs: rs.length,
      requests: range((r) => r.requests),
      p50Ms: range((r) => r.p50Ms),
      p95Ms: range((r) => r.p95Ms),
      p99Ms: range((r) => r.p99Ms),
      sessionsLost: range((r) => r.sessionsLost),
      failedRequests: range((r) => r.failedRequests),
    };
  }
  return out;
}

const span = ([a, b]: [number, number]) => (a === b ? String(a) : `${a}–${b}`);

function spreadLines(s: Summary): string[] {
  return Object.entries(s.spread)
    .filter(([, x]) => x.runs > 1)
    .map(
      ([mode, x]) =>
        `${mode} over ${x.runs} runs: requests ${span(x.requests)}, failed ${span(x.failedRequests)}, lost ${span(x.sessionsLost)}, p50 ${span(x.p50Ms)} ms, p95 ${span(x.p95Ms)} ms, p99 ${span(x.p99Ms)} ms`,
    );
}

const round = (n: number, places = 2) => Math.round(n * 10 ** places) / 10 ** places;

/** Each threshold of k6's summary data: metric (or sub-metric) -> threshold source -> passed. */
export function k6Thresholds(summary: K6Summary): Record<string, Record<string, boolean>> {
  const out: Record<string, Record<string, boolean>> = {};
  for (const [name, metric] of Object.entries(summary.metrics)) {
    const results: Record<string, boolean> = out[name] ?? {};
    for (const [source, t] of Object.entries(metric.thresholds ?? {})) results[source] = t.ok;
    if (Object.keys(results).length) out[name] = results;
  }
  return out;
}

/** What the killed node held (sticky); a lost host: what all its app replicas held together. */
function heldBy(r: RunOutcome): number | null {
  const names = r.lostNodes.length ? r.lostNodes : [r.killedNode!];
  const held = names.map((n) => r.sessionsHeld[n] ?? null);
  return held.includes(null) ? null : held.reduce((a, b) => a! + b!, 0);
}

export function summarizeRun(r: RunOutcome): RunSummary {
  const m = r.summary.metrics;
  const count = (name: string) => m[name]?.values.count ?? 0;
  const dur = m.http_req_duration?.values ?? {};
  const s = r.series;
  // Milliseconds kept: the judge splits losses at the kill, and the first ones come within ms of it.
  const rel = (wall: number | null) => (wall === null || !s.origin ? null : round((wall - s.origin) / 1000, 3));
  const killAtS = rel(r.killWall);
  const restartAtS = rel(r.restartWall);
  const end = s.seconds.length;
  const nodes = r.nodeNames;
  const readyAtS = rel(r.readyWall);
  // The outage lasts from the kill until the restarted node is ready (or the end of the run).
  const outageEnd = readyAtS ?? end + 1;
  const failedByKind = { read: 0, write: 0, login: 0, noSession: 0 };
  for (const f of s.failures) if (f.kind in failedByKind) failedByKind[f.kind as keyof typeof failedByKind]++;
  const lostByNode: Record<string, number> = {};
  for (const l of s.losses) lostByNode[l.node] = (lostByNode[l.node] ?? 0) + 1;
  const lostDuring = killAtS === null ? 0 : s.losses.filter((l) => l.t >= killAtS && l.t < outageEnd).length;
  const lostAfter = readyAtS === null ? 0 : s.losses.filter((l) => l.t >= readyAtS).length;
  const thresholds = k6Thresholds(r.summary);
  const thresholdsPassed = Object.values(thresholds).every((x) => Object.values(x).every(Boolean));
  const byTime = <T extends { t: number; sent?: number }>(xs: T[]) =>
    [...xs].sort((a, b) => a.t - b.t).map((x) => ({ ...x, t: round(x.t, 3), ...(x.sent !== undefined && { sent: round(x.sent, 3) }) }));

  // Failed session writes around the fault: from the first to the last (0: none failed).
  const failedWrites = s.failures.filter((f) => f.kind === 'write').map((f) => f.t);
  const writeOutageS = failedWrites.length ? round(Math.max(...failedWrites) - Math.min(...failedWrites), 1) : 0;
  // By when they were sent: a write sent before the fault that hangs until its timeout says nothing about later ones.
  const writeFailures = s.failures.filter((f) => f.kind === 'write' || f.kind === 'login').map((f) => f.sent ?? f.t);
  const run: RunSummary = {
    mode: r.mode,
    target: r.target,
    fault: r.fault,
    store: r.store,
    redisPersistence: r.redisPersistence,
    nodeSettings: r.nodeSettings,
    redisArgs: r.redisArgs,
    writeOutageS,
    acknowledgedWritesLost: count('acknowledged_writes_lost'),
    readsWentBack: count('reads_went_back'),
    hostsLost: r.hostsLost,
    lostNodes: r.lostNodes,
    swarmRecoveryS: r.recoveredWall !== null && r.killWall !== null ? round((r.recoveredWall - r.killWall) / 1000, 1) : null,
    // Until the lost part came back, and after: a host that rejoins after a partition brings back an
    // app replica whose connections still lead to the old primary, or to nothing yet.
    writesBackAfterS: killAtS === null ? null : round(Math.max(0, ...writeFailures.filter((t) => t < (restartAtS ?? Infinity)).map((t) => t - killAtS)), 1),
    writesBackAfterRestoreS: restartAtS === null ? null : round(Math.max(0, ...writeFailures.filter((t) => t >= restartAtS).map((t) => t - restartAtS)), 1),
    label: r.label,
    nodes: r.nodes,
    vus: r.vus,
    durationS: r.durationS,
    requests: count('http_reqs'),
    failedRequests: count('failed_requests'),
    requestsByKind: { read: s.requestsByKind.read ?? 0, write: s.requestsByKind.write ?? 0, login: s.requestsByKind.login ?? 0, noSession: s.requestsByKind.noSession ?? 0 },
    failedByKind,
    sessionsTotal: count('sessions_started'),
    sessionsLost: count('sessions_lost'),
    sessionsLostDuringOutage: lostDuring,
    sessionsLostAfterRestart: lostAfter,
    sessionsLostByNode: lostByNode,
    checkFailures: m.checks?.values.fails ?? 0,
    failures: byTime(s.failures),
    losses: byTime(s.losses),
    p50Ms: round(dur.med ?? 0),
    p95Ms: round(dur['p(95)'] ?? 0),
    p99Ms: round(dur['p(99)'] ?? 0),
    restartToReadyS: r.readyWall !== null && r.restartWall !== null ? round((r.readyWall - r.restartWall) / 1000) : null,
    revokesStolenCredential: r.probe?.revokesStolenCredential ?? null,
    stateBytesPerRequest: r.probe?.stateBytesPerRequest ?? null,
    serverBytesPerSession: r.probe?.serverBytesPerSession ?? null,
    killedNode: r.killedNode,
    killedNodeSessions: r.killedNode && r.mode === 'sticky' ? heldBy(r) : null,
    killedNodeServedBeforeKill: r.killedNode && killAtS !== null ? s.served.filter((x) => x.node === r.killedNode && x.t < killAtS).length : null,
    killAtS,
    restartAtS,
    readyAtS,
    endS: end,
    shareBeforeKill: shares(s, nodes, 0, killAtS ?? end + 1),
    shareAfterKill: killAtS === null ? {} : shares(s, nodes, killAtS, outageEnd),
    shareAfterRestart: readyAtS === null ? null : shares(s, nodes, readyAtS, end + 1),
    k6: { exitCode: r.k6Exit.code, thresholdsPassed, thresholds },
    claim: { expected: '', held: false, why: '', problems: [] },
    files: {
      plot: `failover-${r.label}.svg`,
      html: path.basename(r.files.html),
      k6Summary: path.basename(r.files.summary),
      k6Json: path.basename(r.files.json),
      k6Log: path.basename(r.files.log),
      logs: path.basename(r.files.logs),
    },
  };
  run.claim = judge(run);
  return run;
}

const pct = (v: number | undefined) => (v === undefined ? '-' : `${Math.round(v * 100)}%`);

const HEAD = [
  'mode',
  'fault',
  'nodes',
  'VUs',
  'requests',
  'failed (read/write/login/no-session)',
  'sessions',
  'lost (outage/after restart)',
  'p50 ms',
  'p95 ms',
  'p99 ms',
  'killed (held)',
  'restart→ready s',
  'logout revokes a stolen copy',
  'state B/request',
  'server B/session',
  'claim',
];
const yesNo = (v: boolean | null) => (v === null ? '?' : v ? 'yes' : 'no');

function row(r: RunSummary): string[] {
  return [
    r.label,
    `${r.fault}${r.fault?.startsWith('redis') ? ` (${r.store}, ${r.redisPersistence})` : ''}${Object.entries(r.nodeSettings ?? {})
      .map(([k, v]) => ` ${k}=${v}`)
      .join('')}${r.redisArgs?.length ? ` redis ${r.redisArgs.join(' ')}` : ''}`,
    String(r.nodes),
    String(r.vus),
    String(r.requests),
    `${r.failedRequests} (${r.failedByKind.read}/${r.failedByKind.write}/${r.failedByKind.login}/${r.failedByKind.noSession})`,
    String(r.sessionsTotal),
    `${r.sessionsLost} (${r.sessionsLostDuringOutage}/${r.sessionsLostAfterRestart})`,
    String(r.p50Ms),
    String(r.p95Ms),
    String(r.p99Ms),
    r.killedNode ? `${r.killedNode}${r.killedNodeSessions !== null ? ` (${r.killedNodeSessions})` : ''} @${r.killAtS?.toFixed(1)}s` : 'none',
    r.restartToReadyS === null ? '-' : String(r.restartToReadyS),
    yesNo(r.revokesStolenCredential),
    r.stateBytesPerRequest === null ? '?' : String(r.stateBytesPerRequest),
    r.serverBytesPerSession === null ? '?' : String(r.serverBytesPerSession),
    r.claim.held ? 'held' : 'NOT HELD',
  ];
}

/** The table for the terminal. */
export function textTable(s: Summary): string {
  const rows = [HEAD, ...s.runs.map(row)];
  const widths = HEAD.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  const out = [line(HEAD), widths.map((w) => '-'.repeat(w)).join('  '), ...s.runs.map((r) => line(row(r)))];
  for (const r of s.runs) out.push(`${r.label}: ${r.claim.held ? 'claim held' : 'CLAIM NOT HELD'}: ${r.claim.why}`);
  out.push(...spreadLines(s));
  return out.join('\n');
}

export function markdown(s: Summary): string {
  const md: string[] = [];
  md.push('# Failover experiment', '');
  md.push(`Generated ${s.generatedAt} by \`${s.command}\` on ${s.machine.cpus} CPU(s), Node ${s.machine.node}, k6 ${s.machine.k6}.`, '');
  md.push(
    'Each run starts its own cluster, local processes or the compose stack (`--target`; nginx in front of the nodes; Redis for every mode but database, PostgreSQL for database), runs `loadtest/survival.js` with k6 (one user and one long-lived session per VU, 50-100 ms between requests), SIGKILLs one node during the load and starts it again later. A *lost* session is a 401 on a session that was valid; a *failed* request is a 5xx or a network error.',
    '',
  );
  md.push(`| ${HEAD.join(' | ')} |`, `|${HEAD.map(() => '---').join('|')}|`);
  for (const r of s.runs) md.push(`| ${row(r).join(' | ')} |`);
  md.push('');
  const spreads = spreadLines(s);
  if (spreads.length) md.push('Spread (lowest–highest over the runs of each mode):', '', ...spreads.map((l) => `- ${l}`), '');
  for (const r of s.runs) {
    md.push(`## ${r.label === r.mode ? `${r.mode} mode` : `${r.mode} mode, run ${r.label.slice(r.mode.length + 1)}`}`, '');
    md.push(`**Claim:** ${r.claim.expected}. **${r.claim.held ? 'Held' : 'Not held'}:** ${r.claim.why}.`, '');
    const timeline = r.killedNode
      ? `${r.killedNode} SIGKILLed at t=${r.killAtS?.toFixed(1)}s${r.restartAtS !== null ? `, started again at t=${r.restartAtS.toFixed(1)}s (ready at t=${r.readyAtS?.toFixed(1) ?? '-'}s)` : ', not restarted'}.`
      : 'No node was killed.';
    md.push(`${r.vus} VUs for ${r.durationS}s against ${r.nodes} nodes. ${timeline} k6 thresholds ${r.k6.thresholdsPassed ? 'passed' : 'failed'} (exit ${r.k6.exitCode}).`, '');
    md.push(`![${r.mode}: requests/s by node, failures, losses and latency over time](${r.files.plot})`, '');
    const nodes = Object.keys(r.shareBeforeKill);
    md.push('| node | share before kill | share during outage | share after restart | sessions lost (last served by) |', '|---|---|---|---|---|');
    for (const n of nodes)
      md.push(
        `| ${n}${n === r.killedNode ? ' (killed)' : ''} | ${pct(r.shareBeforeKill[n])} | ${pct(r.shareAfterKill[n])} | ${r.shareAfterRestart ? pct(r.shareAfterRestart[n]) : '-'} | ${r.sessionsLostByNode[n] ?? 0} |`,
      );
    md.push('');
    md.push(
      `k6: [HTML report](${r.files.html}) · [summary](${r.files.k6Summary}) · [samples (JSON lines, gzip)](${r.files.k6Json}) · [log](${r.files.k6Log}) · cluster logs in \`${r.files.logs}/\``,
      '',
    );
  }
  return md.join('\n');
}

export function machine(k6: string): Summary['machine'] {
  return { cpus: os.cpus().length, node: process.version, k6 };
}

/** Writes summary.json, summary.md and one SVG per run into `outDir`. */
export function writeReport(outDir: string, s: Summary, outcomes: RunOutcome[]): void {
  for (const [i, r] of s.runs.entries()) {
    const o = outcomes[i]!;
    const svg = plotRun({
      title: `${r.mode} mode: ${r.nodes} nodes, ${r.vus} VUs, ${r.killedNode ? `SIGKILL ${r.killedNode}` : 'no kill'} — lost ${r.sessionsLost}, failed ${r.failedRequests}`,
      seconds: o.series.seconds,
      nodes: Object.keys(r.shareBeforeKill),
      killAtS: r.killAtS,
      restartAtS: r.restartAtS,
      readyAtS: r.readyAtS,
      killedNode: r.killedNode,
    });
    fs.writeFileSync(path.join(outDir, r.files.plot), svg);
  }
  fs.writeFileSync(path.join(outDir, 'summary.json'), JSON.stringify(s, null, 2) + '\n');
  fs.writeFileSync(path.join(outDir, 'summary.md'), markdown(s));
}
