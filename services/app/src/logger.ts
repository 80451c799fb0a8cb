import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

/** JSON lines on stdout, one base field per node. */
export function createLogger(config: Pick<Config, 'logLevel' | 'nodeId' | 'mode'>): Logger {
  return pino({ level: config.logLevel, base: { node: config.nodeId, mode: config.mode }, timestamp: pino.stdTimeFunctions.isoTime });
}
