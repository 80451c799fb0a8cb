import net from 'node:net';

/**
 * The clients' way in: what a cloud TCP load balancer in front of the swarm does, as one small
 * process outside the hosts. Each client connection goes to the next host in turn; a host that
 * refuses or does not answer the connect within CONNECT_TIMEOUT_MS is skipped, and avoided for
 * AVOID_MS, then tried again (passive health, like nginx's max_fails/fail_timeout). Bytes are
 * piped, never read: TLS, cookies and HTTP stay between the client and the host's nginx.
 *
 *   node dist/swarm/front.js LISTEN_HOST:PORT BACKEND_HOST:PORT...
 */
export const CONNECT_TIMEOUT_MS = 1000;
export const AVOID_MS = 5000;

export interface Front {
  server: net.Server;
  /** Connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

export function startFront(listen: { host: string; port: number }, backends: Array<{ host: string; port: number }>): Promise<Front> {
  if (!backends.length) throw new Error('the front needs at least one backend');
  const avoidUntil = new Map<number, number>();
  const sockets = new Set<net.Socket>();
  let next = 0;
  let accepted = 0;

  const connect = (client: net.Socket, tried: number) => {
    if (client.destroyed) return;
    if (tried >= backends.length) return void client.destroy();
    const now = Date.now();
    // The next healthy backend in turn; when every one is avoided, the next one anyway.
    let i = next++ % backends.length;
    for (let k = 0; k < backends.length && (avoidUntil.get(i) ?? 0) > now; k++) i = next++ % backends.length;
    const b = backends[i]!;
    const upstream = net.connect({ host: b.host, port: b.port });
    sockets.add(upstream);
    const timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
    const failed = () => {
      clearTimeout(timer);
      sockets.delete(upstream);
      avoidUntil.set(i, Date.now() + AVOID_MS);
      connect(client, tried + 1);
    };
    upstream.once('error', failed);
    upstream.once('connect', () => {
      clearTimeout(timer);
      upstream.off('error', failed);
      avoidUntil.delete(i);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.on('close', () => (sockets.delete(upstream), client.destroy()));
      client.on('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  };

  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    accepted++;
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    connect(client, 0);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () =>
      resolve({
        server,
        accepted: () => accepted,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      }),
    );
  });
}

function address(s: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(s);
  if (!m) throw new Error(`not HOST:PORT: "${s}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [listen, ...backends] = process.argv.slice(2);
  if (!listen || !backends.length) {
    process.stderr.write('usage: front.js LISTEN_HOST:PORT BACKEND_HOST:PORT...\n');
    process.exit(2);
  }
  const front = await startFront(address(listen), backends.map(address));
  process.stderr.write(`front: ${listen} -> ${backends.join(' ')}\n`);
  const stop = () => void front.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
