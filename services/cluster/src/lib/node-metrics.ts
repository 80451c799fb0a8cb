const METRIC = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? ([-+0-9.eE]+|NaN)$/;

/** Sums of each metric name in a Prometheus text page (labels ignored). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = METRIC.exec(line);
    if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
  }
  return out;
}

/**
 * The garbage collector's pauses of a node's main thread, from its Prometheus text (prom-client's
 * `nodejs_gc_duration_seconds` histogram, every kind): seconds in all, and how many were major
 * (mark-compact) collections.
 */
export function parseGcPauses(text: string): { pauseSeconds: number; majors: number } {
  const out = { pauseSeconds: 0, majors: 0 };
  for (const m of text.matchAll(/^session_cluster_nodejs_gc_duration_seconds_(sum|count)\{[^}]*\bkind="([^"]+)"[^}]*\} (\S+)$/gm)) {
    if (m[1] === 'sum') out.pauseSeconds += Number(m[3]);
    else if (m[2] === 'major') out.majors += Number(m[3]);
  }
  return out;
}

/**
 * The command that prints a node's Prometheus text from inside its container (`docker exec NAME
 * ...`): the app port 9100 is never published, and the image has Node, not curl.
 */
export const METRICS_IN_CONTAINER = ['node', '-e', "fetch('http://127.0.0.1:9100/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))"];
/** The same, exiting 0 if the node answers /readyz 200 (it can serve sessions). */
export const READY_IN_CONTAINER = ['node', '-e', "fetch('http://127.0.0.1:9100/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"];

/** One node's Prometheus text (its internal port), reduced to its active sessions, the requests it has answered and the logins it has finished. */
export async function nodeLoad(metricsPort: number): Promise<{ sessions: number; requests: number; logins: number }> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) });
  const m = parseMetrics(await res.text());
  return {
    sessions: m.get('session_cluster_sessions_active') ?? 0,
    requests: m.get('session_cluster_http_requests_total') ?? 0,
    logins: m.get('session_cluster_logins_total') ?? 0,
  };
}
