import { Command, Redis } from 'ioredis';

/**
 * ioredis's two timers, made to survive a stalled event loop.
 *
 * A command times out (`commandTimeout`) and a silent socket is destroyed (`socketTimeout`) from a
 * timer. When the node itself stalls (a long GC pause, a CPU-starved container, a machine that
 * stops scheduling it) for longer than the timeout, Redis's reply is already in the socket when the
 * node runs again, but the event loop runs expired timers before it reads sockets: the command
 * fails with "Command timed out" (a 503), or the connection is destroyed, although Redis answered
 * in time. Here each timer decides one loop turn later (setImmediate runs after the socket reads of
 * the turn), so a reply that arrived during the stall settles the command first. A Redis that
 * really does not answer is given up one turn later than before: microseconds.
 *
 * The timers are ioredis's own (Command#setTimeout, Redis#setSocketTimeout), replaced on their
 * prototypes so that every client (Redis, Sentinel-backed, each node of a Cluster) has them.
 * process/redis-timeouts.test.ts stalls a node for longer than both timeouts with a reply waiting,
 * and fails against ioredis's originals.
 */
export function surviveStalls(): void {
  if (patched) return;
  const command = Command.prototype as unknown as CommandInternals;
  const client = Redis.prototype as unknown as ClientInternals;
  if (typeof command.setTimeout !== 'function' || typeof client.setSocketTimeout !== 'function') {
    throw new Error('ioredis no longer has Command#setTimeout and Redis#setSocketTimeout: redis-timeouts.ts needs revisiting');
  }

  command.setTimeout = function (this: CommandInternals, ms: number) {
    if (this._commandTimeoutTimer) return;
    this._commandTimeoutTimer = setTimeout(() => {
      setImmediate(() => {
        if (!this.isSettled) this.reject(new Error('Command timed out'));
      });
    }, ms);
  };

  client.setSocketTimeout = function (this: ClientInternals) {
    const stream = this.stream;
    const timer = setTimeout(() => {
      setImmediate(() => {
        // Data read in between replaced (or cleared) this timer: the socket is not silent.
        if (this.socketTimeoutTimer !== timer) return;
        this.socketTimeoutTimer = undefined;
        stream.destroy(new Error(`Socket timeout. Expecting data, but didn't receive any in ${this.options.socketTimeout}ms.`));
      });
    }, this.options.socketTimeout);
    this.socketTimeoutTimer = timer;
    // As ioredis does: this listener runs after the reply parser's, so the command queue is current.
    stream.once('data', () => {
      clearTimeout(this.socketTimeoutTimer);
      this.socketTimeoutTimer = undefined;
      if (this.commandQueue.length === 0) return;
      this.setSocketTimeout();
    });
  };
  patched = true;
}

let patched = false;

/** The parts of ioredis's classes the two timers touch (private in its typings). */
interface CommandInternals {
  setTimeout(ms: number): void;
  _commandTimeoutTimer?: NodeJS.Timeout;
  isSettled: boolean;
  reject(err: Error): void;
}
interface ClientInternals {
  setSocketTimeout(): void;
  socketTimeoutTimer?: NodeJS.Timeout;
  stream: NodeJS.ReadableStream & { destroy(err: Error): void };
  options: { socketTimeout?: number };
  commandQueue: { length: number };
}
