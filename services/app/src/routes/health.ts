import type { IRouter } from 'express';

/** /healthz: the process runs. /readyz: it can serve sessions (503 while draining or while its store is down). */
export function healthRoutes(router: IRouter, d: { nodeId: string; mode: string; draining: () => boolean; storeReady: () => boolean }): void {
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', node: d.nodeId });
  });
  router.get('/readyz', (_req, res) => {
    const reason = d.draining() ? 'draining' : d.storeReady() ? null : 'store unavailable';
    res.status(reason ? 503 : 200).json({ status: reason ? 'unavailable' : 'ready', node: d.nodeId, mode: d.mode, ...(reason && { reason }) });
  });
}
