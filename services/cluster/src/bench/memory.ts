import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import { Redis } from 'ioredis';
import { appMergePolicy, createCodec, noopObserver, SharedSessionStore } from '@session-cluster/app/session';
import { freePort } from '../lib/ports.js';
import { terminate } from '../lib/pids.js';
import { launch, redisSpec } from '../parts.js';

/**
 * Redis memory per stored session, side by side for the same session contents:
 * connect-redis's defaults (`textbook`) against this project's store (`shared`). Both write through
 * their real store classes into a real redis-server; memory is `used_memory` before and after
 * `count` sessions, and `MEMORY USAGE` of one key.
 */
export interface BytesPerSession {
  textbook: number;
  shared: number;
  ratio: number;
  memoryUsageKey: { textbook: number; shared: number };
  count: number;
}

const cookieOptions = { path: '/', httpOnly: true, secure: false, sameSite: 'lax' as const };

/** A minimal logged-in session, as express-session hands it to a store. */
function loggedIn(i: number): SessionData {
  // What express-session's Cookie serialises to (no Max-Age).
  const cookie = { originalMaxAge: null, expires: null, ...cookieOptions };
  return { cookie, user: `user${i % 1000}`, loginAt: Date.now(), node: 'app-1', requests: 0, cart: [] } as unknown as SessionData;
}

const sid = (i: number) => `${i.toString(36).padStart(8, '0')}${'x'.repeat(24)}`; // 32 chars, like uid-safe(24)

async function fill(redis: Redis, store: { set(sid: string, sess: SessionData): unknown }, count: number): Promise<number> {
  await redis.flushall();
  const before = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
  const batch = 2000;
  for (let start = 0; start < count; start += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - start) }, (_, k) => store.set(sid(start + k), loggedIn(start + k))));
  }
  const after = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
  return (after - before) / count;
}

export async function measureBytesPerSession(count = 100_000): Promise<BytesPerSession> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-mem-'));
  const port = await freePort();
  const server = await launch(redisSpec(port, dir), dir);
  const redis = new Redis({ port, host: '127.0.0.1' });
  try {
    const textbookStore = new RedisStore({ client: redis });
    const sharedStore = new SharedSessionStore(redis, { prefix: 's:', idleTimeoutS: 1800, codec: createCodec(cookieOptions), observer: noopObserver, merge: appMergePolicy });
    const textbook = await fill(redis, textbookStore, count);
    const textbookKey = Number(await redis.memory('USAGE', `sess:${sid(1)}`));
    const shared = await fill(redis, sharedStore, count);
    const sharedKey = Number(await redis.memory('USAGE', `s:${sid(1)}`));
    return {
      textbook: Math.round(textbook),
      shared: Math.round(shared),
      ratio: Math.round((shared / textbook) * 1000) / 1000,
      memoryUsageKey: { textbook: textbookKey, shared: sharedKey },
      count,
    };
  } finally {
    redis.disconnect();
    await terminate(server.pid);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
