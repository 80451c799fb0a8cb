import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

/** JSON lines on stdout, one base field per node. */
export function createLogger(config: Pick<Config, 'logLevel' | 'nodeId' | 'mode'>): Logger {
  // Asynchronous writes: under load, lines are batched into fewer write() calls (profiled: the
  // synchronous write per access line was the largest cost of a request after GC). main.ts
  // flushes before a clean exit.
  const destination = pino.destination({ dest: 1, sync: false });
  return pino({ level: config.logLevel, base: { node: config.nodeId, mode: config.mode }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
