import net from 'node:net';

/**
 * The clients' way in: what a cloud TCP load balancer in front of the swarm does, as one small
 * process outside the hosts. Bytes are piped, never read: TLS, cookies and HTTP stay between the
 * client and the host's nginx.
 *
 * - Each client connection goes to the next host in turn that is up.
 * - Active health: every CHECK_INTERVAL_MS each host gets a TCP connect. FALL failed checks in a row
 *   (refused, or no answer within CONNECT_TIMEOUT_MS) mark it down, RISE good ones up again.
 * - A host marked down has its established connections closed (HAProxy's `on-marked-down
 *   shutdown-sessions`, a cloud balancer's connection termination on unhealthy targets): a host
 *   that is cut off or powered off never closes them itself, and a client would wait on them until
 *   its own timeout. Closed, the client's request fails at once and its next one goes elsewhere.
 * - Passive health as well: a host that refuses or does not answer a client's connect is skipped at
 *   once and avoided for AVOID_MS (nginx's max_fails/fail_timeout).
 *
 *   node dist/swarm/front.js LISTEN_HOST:PORT BACKEND_HOST:PORT...
 */
export const CONNECT_TIMEOUT_MS = 1000;
export const AVOID_MS = 5000;
export const CHECK_INTERVAL_MS = 500;
export const FALL = 2;
export const RISE = 2;

export interface Front {
  server: net.Server;
  /** Connections accepted so far. */
  accepted(): number;
  /** Each backend's health as the checks see it. */
  health(): Array<{ backend: string; up: boolean }>;
  close(): Promise<void>;
}

interface Backend {
  host: string;
  port: number;
  up: boolean;
  /** Consecutive checks that disagreed with `up`. */
  streak: number;
  checking: boolean;
  avoidUntil: number;
  /** Client connections piped to it now. */
  clients: Set<net.Socket>;
}

/** One TCP connect: true if it completed within CONNECT_TIMEOUT_MS. */
function reachable(b: Pick<Backend, 'host' | 'port'>): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: b.host, port: b.port });
    const done = (ok: boolean) => (clearTimeout(timer), s.destroy(), resolve(ok));
    const timer = setTimeout(() => done(false), CONNECT_TIMEOUT_MS);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export function startFront(listen: { host: string; port: number }, addresses: Array<{ host: string; port: number }>, log: (line: string) => void = () => {}): Promise<Front> {
  if (!addresses.length) throw new Error('the front needs at least one backend');
  const backends: Backend[] = addresses.map((a) => ({ ...a, up: true, streak: 0, checking: false, avoidUntil: 0, clients: new Set() }));
  const sockets = new Set<net.Socket>();
  let next = 0;
  let accepted = 0;

  const check = async (b: Backend) => {
    if (b.checking) return;
    b.checking = true;
    const ok = await reachable(b);
    b.checking = false;
    b.streak = ok === b.up ? 0 : b.streak + 1;
    if (b.streak < (b.up ? FALL : RISE)) return;
    b.up = ok;
    b.streak = 0;
    log(`${b.host}:${b.port} ${ok ? 'up' : `down: closing its ${b.clients.size} connection(s)`}`);
    if (!ok) for (const c of b.clients) c.destroy();
  };
  const checks = setInterval(() => backends.forEach((b) => void check(b)), CHECK_INTERVAL_MS);

  /** The next backend in turn that is up and not avoided; when none is, the next one anyway. */
  const pick = (): Backend => {
    const now = Date.now();
    for (let k = 0; k < backends.length; k++) {
      const b = backends[next++ % backends.length]!;
      if (b.up && b.avoidUntil <= now) return b;
    }
    return backends[next++ % backends.length]!;
  };

  const connect = (client: net.Socket, tried: number) => {
    if (client.destroyed) return;
    if (tried >= backends.length) return void client.destroy();
    const b = pick();
    const upstream = net.connect({ host: b.host, port: b.port });
    sockets.add(upstream);
    const timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
    const failed = () => {
      clearTimeout(timer);
      sockets.delete(upstream);
      b.avoidUntil = Date.now() + AVOID_MS;
      connect(client, tried + 1);
    };
    upstream.once('error', failed);
    upstream.once('connect', () => {
      clearTimeout(timer);
      upstream.off('error', failed);
      b.avoidUntil = 0;
      b.clients.add(client);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.on('close', () => (sockets.delete(upstream), client.destroy()));
      client.on('close', () => (b.clients.delete(client), upstream.destroy()));
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
    server.once('error', (err) => (clearInterval(checks), reject(err)));
    server.listen(listen.port, listen.host, () =>
      resolve({
        server,
        accepted: () => accepted,
        health: () => backends.map((b) => ({ backend: `${b.host}:${b.port}`, up: b.up })),
        close: () =>
          new Promise<void>((r) => {
            clearInterval(checks);
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
  const say = (line: string) => process.stderr.write(`${new Date().toISOString()} front: ${line}\n`);
  const front = await startFront(address(listen), backends.map(address), say);
  say(`${listen} -> ${backends.join(' ')}`);
  const stop = () => void front.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
