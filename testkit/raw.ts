import net from 'node:net';
import http from 'node:http';

/** One HTTP request with headers and body bytes exactly as given (fetch normalises or refuses some). */
export function raw(
  base: string,
  opts: { method: string; path: string; headers?: Record<string, string>; body?: Buffer; timeoutMs?: number },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method: opts.method, path: opts.path, headers: opts.headers, agent: false, timeout: opts.timeoutMs ?? 5000 },
      (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${opts.method} ${opts.path}: no answer within ${opts.timeoutMs ?? 5000} ms (a hang)`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Bytes on a socket, exactly as given (a method or header bytes that any HTTP client would refuse
 * to send), and what came back until the server closed: the final answer's status code (past any
 * 100 Continue; 0 if none), its head and the whole of it as latin1 text. The request should say `Connection: close`.
 */
export function rawBytes(base: string, request: string | Buffer, timeoutMs = 5000): Promise<{ status: number; head: string; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      // The final answer: past any interim 1xx (100 Continue).
      const text = Buffer.concat(chunks)
        .toString('latin1')
        .replace(/^(HTTP\/1\.[01] 1\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');
      const end = text.indexOf('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), head: end < 0 ? text : text.slice(0, end), text });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms (a hang) to: ${String(request).slice(0, 80)}`));
    }, timeoutMs);
    socket.on('data', (d) => chunks.push(d));
    socket.on('close', done);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // Not end(): a half-closed client is one that went away, to nginx (499). The request says `Connection: close`.
    socket.write(request);
  });
}
