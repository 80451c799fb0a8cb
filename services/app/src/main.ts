import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp } from './app.js';
import { ConfigError, parseConfig, type Config } from './config.js';
import { publicServer } from './http/server.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { needsPostgres, needsRedis } from './modes.js';
import { openDatabase } from './db.js';
import { openRedisClients } from './redis.js';
import { createDemoDirectory } from './users.js';

/**
 * The process: parse the environment once, build the node, listen, and drain on SIGTERM.
 * Exit codes: 0 after a clean drain, 1 for bad configuration or a failed start.
 */

function loadConfig(): Config {
  try {
    return parseConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  const metrics = createMetrics({ nodeId: config.nodeId, mode: config.mode, version: config.version });

  const redis = needsRedis(config) ? openRedisClients(config, logger, metrics) : null;
  const pg = needsPostgres(config) ? openDatabase(config, logger) : null;

  // Nothing is hashed before listening: each account's hash is derived on first use (users.ts).
  const users = createDemoDirectory(config.demoUsers);

  const publicDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../public');
  const node = createApp(config, { redis, pg, users, logger, metrics, publicDir });

  const server = publicServer(node.app);
  // The internal port: /metrics, /healthz, /readyz. nginx never proxies it.
  const metricsServer = http.createServer(node.internal);

  try {
    const port = await listen(server, config.port, config.host);
    const metricsPort = await listen(metricsServer, config.metricsPort, config.host);
    logger.info({ port, metricsPort, mode: config.mode }, 'listening');
  } catch (err) {
    logger.fatal({ err }, 'could not listen');
    process.exit(1);
  }

  let stopping = false;
  const drain = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, delayS: config.shutdownDelayS, deadlineS: config.shutdownTimeoutS }, 'draining');
    // 1. Readiness goes 503, and every response now says `Connection: close`: each keep-alive
    //    connection is retired cleanly after its next response, by the side that knows it is done.
    node.startDraining();
    // The deadline counts from the signal: it covers the delay and the drain (config.ts).
    const deadline = setTimeout(() => {
      logger.warn('drain deadline reached; closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownTimeoutS * 1000).unref();
    // 2. Keep accepting for SHUTDOWN_DELAY: a load balancer that follows DNS (Docker Swarm's
    //    service name, re-resolved by nginx every few seconds) still sends new connections until it
    //    has dropped this node. Closing the listener under them resets every connection the kernel
    //    has completed but Node has not accepted yet, after nginx has sent a request on it: a POST
    //    is then a 502 (nginx does not replay it). A runner that takes the node out of rotation
    //    itself before the signal (the local cluster) needs no delay.
    // 3. Then stop accepting. Open connections end by themselves: via (1), or nginx closes the ones
    //    it leaves idle after its upstream keepalive_timeout (4 s, infra/nginx/render.sh). Nothing is
    //    closed from this side before the deadline: closing an idle keep-alive connection races with
    //    nginx sending on it, and Node's closeIdleConnections() (which http.Server#close() calls)
    //    even counts a connection whose request has arrived but is not yet parsed as idle.
    const stopAccepting = () => {
      logger.info('no longer accepting connections');
      net.Server.prototype.close.call(server, async () => {
        clearTimeout(deadline);
        metricsServer.close();
        node.close();
        await Promise.allSettled([...Object.values(redis ?? {}).map((c) => c.quit()), pg?.end()]);
        logger.info('drained; exiting');
        logger.flush(() => process.exit(0));
      });
    };
    if (config.shutdownDelayS > 0) setTimeout(stopAccepting, config.shutdownDelayS * 1000);
    else stopAccepting();
  };
  process.on('SIGTERM', () => drain('SIGTERM'));
  process.on('SIGINT', () => drain('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`fatal: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
