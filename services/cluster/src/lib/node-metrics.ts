/** One node's Prometheus text (its internal port), reduced to its active sessions and the requests it has answered. */
export async function nodeLoad(metricsPort: number): Promise<{ sessions: number; requests: number }> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  let sessions = 0;
  let requests = 0;
  for (const line of text.split('\n')) {
    const m = /^session_cluster_(sessions_active|http_requests_total)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'sessions_active') sessions = Number(m[2]);
    else requests += Number(m[2]);
  }
  return { sessions, requests };
}
