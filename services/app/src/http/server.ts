import http from 'node:http';

/**
 * The public HTTP server's limits, set against nginx's (nginx.conf), so that nothing nginx forwards
 * makes a node fail as a node:
 * - Request headers: nginx accepts up to 4 lines of 16 KiB (`large_client_header_buffers`), 64 KiB
 *   in all; Node's own limit is 16 KiB. A node accepts whatever nginx forwards, so the edge is the
 *   one place that refuses a header (431), and a node never answers one by closing the connection.
 * - Keep-alive: nginx keeps an idle upstream connection 4 s (infra/nginx/render.sh) and at most 60 s
 *   anywhere; a node keeps it 65 s, so nginx never reuses a connection the node has closed (502).
 * - A request gets 30 s, nginx's proxy_read_timeout.
 */
export const MAX_REQUEST_HEADER_BYTES = 96 * 1024;
const KEEP_ALIVE_MS = 65_000;

export function publicServer(handler: http.RequestListener): http.Server {
  const server = http.createServer({ maxHeaderSize: MAX_REQUEST_HEADER_BYTES }, handler);
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = KEEP_ALIVE_MS + 1000;
  server.requestTimeout = 30_000;
  return server;
}
