import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * The node's internal port (METRICS_PORT): `/metrics` for Prometheus, `/healthz` (the process
 * runs) and `/readyz` (it can serve sessions: 503 while draining or while its store does not
 * answer) for the orchestrator. nginx never proxies this port, so none of it is public under any
 * spelling: the public port has no health routes at all (a deny rule in nginx could only ever
 * match the spellings someone thought of; Express matches `/HEALTHZ` and `/healthz/` too).
 *
 * Exact paths only, no Express: this handler is tiny and must keep answering while the app is
 * saturated or draining.
 */
export interface InternalDeps {
  nodeId: string;
  mode: string;
  registry: Registry;
  draining(): boolean;
  /** Resolves true when the store answered within its command timeout. */
  storeReady(): Promise<boolean>;
}

export function internalHandler(d: InternalDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const json = (res: ServerResponse, status: number, body: object) => {
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'X-Served-By': d.nodeId });
    res.end(JSON.stringify(body));
  };
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: { code: 'NOT_FOUND', message: 'No such route.' } });
    switch (path) {
      case '/metrics':
        d.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'Content-Type': d.registry.contentType });
            res.end(text);
          },
          () => json(res, 500, { error: { code: 'INTERNAL', message: 'Internal error.' } }),
        );
        return;
      case '/healthz':
        return json(res, 200, { status: 'ok', node: d.nodeId });
      case '/readyz': {
        if (d.draining()) return json(res, 503, { status: 'unavailable', node: d.nodeId, mode: d.mode, reason: 'draining' });
        d.storeReady().then(
          (ok) => json(res, ok ? 200 : 503, { status: ok ? 'ready' : 'unavailable', node: d.nodeId, mode: d.mode, ...(!ok && { reason: 'store unavailable' }) }),
          () => json(res, 503, { status: 'unavailable', node: d.nodeId, mode: d.mode, reason: 'store unavailable' }),
        );
        return;
      }
      default:
        return json(res, 404, { error: { code: 'NOT_FOUND', message: 'No such route.' } });
    }
  };
}
