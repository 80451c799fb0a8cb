import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { startFront, type Front } from '../../src/swarm/front.js';
import { freePort, waitFor } from '../../src/lib/ports.js';

// The swarm's front (the clients' TCP balancer): a host that stops answering is marked down by the
// active checks, its established connections are closed (a client would otherwise wait on them until
// its own timeout: a cut-off host never closes them), new connections go to the others, and the host
// is used again once it answers. Each backend here stands for a host's nginx: it greets a new
// connection with its name and then stays silent, as a host that lost power would.
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface Backend {
  name: string;
  port: number;
  listen(): Promise<void>;
  /** Stops accepting (connects are refused); established connections stay open. */
  stopAccepting(): Promise<void>;
}

async function backend(name: string): Promise<Backend> {
  const port = await freePort();
  const open = new Set<net.Socket>();
  let server: net.Server | null = null;
  const b: Backend = {
    name,
    port,
    listen: () =>
      new Promise((resolve) => {
        server = net.createServer((s) => (open.add(s), s.on('close', () => open.delete(s)), s.on('error', () => {}), s.write(name)));
        server.listen(port, '127.0.0.1', resolve);
      }),
    // close() stops the listener at once; its callback would wait for the open connections to end.
    stopAccepting: async () => void server?.close(),
  };
  await b.listen();
  cleanup.push(async () => {
    for (const s of open) s.destroy();
    await b.stopAccepting();
  });
  return b;
}

/** A client through the front: which backend greeted it, and whether its connection is still open. */
async function client(port: number): Promise<{ name: string; closed: () => boolean; socket: net.Socket }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => {});
  cleanup.push(() => socket.destroy());
  const name = await new Promise<string>((resolve, reject) => {
    socket.once('data', (d) => resolve(d.toString()));
    socket.once('close', () => reject(new Error('closed before a greeting')));
  });
  return { name, closed: () => closed, socket };
}

it('closes the connections of a host that stops answering, sends new ones elsewhere, and uses it again when it is back', { timeout: 60_000 }, async () => {
  const [a, b] = [await backend('A'), await backend('B')];
  const port = await freePort();
  const front: Front = await startFront(
    { host: '127.0.0.1', port },
    [a, b].map((x) => ({ host: '127.0.0.1', port: x.port })),
  );
  cleanup.push(() => front.close());

  // Round robin: four clients, two on each host.
  const clients = await Promise.all([1, 2, 3, 4].map(() => client(port)));
  expect(clients.map((c) => c.name).sort()).toEqual(['A', 'A', 'B', 'B']);

  await a.stopAccepting();
  // The checks mark A down and close its two connections; B's stay open.
  await waitFor('A marked down', async () => front.health().find((h) => h.backend.endsWith(`:${a.port}`))?.up === false, 10_000, 50);
  await waitFor("A's connections closed", async () => clients.filter((c) => c.name === 'A').every((c) => c.closed()), 5_000, 50);
  expect(clients.filter((c) => c.name === 'B').map((c) => c.closed())).toEqual([false, false]);
  // Every new connection goes to B.
  expect((await Promise.all([1, 2, 3, 4].map(() => client(port)))).map((c) => c.name)).toEqual(['B', 'B', 'B', 'B']);

  await a.listen();
  await waitFor('A marked up again', async () => front.health().every((h) => h.up), 10_000, 50);
  expect((await Promise.all([1, 2, 3, 4].map(() => client(port)))).map((c) => c.name).sort()).toEqual(['A', 'A', 'B', 'B']);
});
