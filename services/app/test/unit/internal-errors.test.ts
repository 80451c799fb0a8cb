import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import { createApp } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { createMetrics } from '../../src/metrics.js';
import type { UserDirectory } from '../../src/users.js';
import { Client } from '../../../../testkit/client.js';
import { SECRET_A, SECRET_B } from '../../../../testkit/node.js';

// "No response ever carries a stack trace": the 500 path, triggered for real. A user directory
// that fails (a dependency with a bug, not a stand-in for Redis) makes login throw an unexpected
// error; the client gets the catalogue's INTERNAL, and the log gets the stack.
let server: http.Server;
let url: string;
const logged: string[] = [];
beforeAll(async () => {
  const config = parseConfig({ SESSION_SECRETS: SECRET_A, SESSION_MODE: 'sticky', LOGIN_LIMITER: 'memory', LOG_LEVEL: 'error', TRUST_PROXY: 'false' });
  const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
  const broken: UserDirectory = {
    size: 1,
    async verify() {
      throw new TypeError("Cannot read properties of undefined (reading 'hash') at /srv/secret/path.js:12");
    },
  };
  const handle = createApp(config, { redis: null, users: broken, logger, metrics: createMetrics({ nodeId: 'n', mode: 'sticky', version: 't' }) });
  server = http.createServer(handle.app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

it('an unexpected error is a 500 INTERNAL with the catalogue message only; the stack goes to the log', async () => {
  const r = await new Client(url).login('user1');
  expect(r.status).toBe(500);
  expect(r.body).toEqual({ error: { code: 'INTERNAL', message: 'Internal error.' } });
  expect(JSON.stringify(r.body)).not.toMatch(/TypeError|secret|path\.js|at /);
  expect(logged.join('\n')).toMatch(/TypeError[\s\S]*stack/);
  // The node keeps serving.
  expect((await fetch(url + '/api/ping')).status).toBe(200);
});

it('SESSION_SECRETS_FILE (the compose secret) supplies the secrets, one per line, first signs', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-secrets-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'session_secrets');
  fs.writeFileSync(file, `${SECRET_B}\n${SECRET_A}\n`, { mode: 0o600 });
  expect(parseConfig({ SESSION_SECRETS_FILE: file }).secrets).toEqual([SECRET_B, SECRET_A]);
  expect(() => parseConfig({ SESSION_SECRETS_FILE: file, SESSION_SECRETS: SECRET_A })).toThrow(/SESSION_SECRETS_FILE cannot be combined/);
  expect(() => parseConfig({ SESSION_SECRETS_FILE: file + '.missing' })).toThrow(/SESSION_SECRETS_FILE cannot be read: ENOENT/);
  fs.writeFileSync(file, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n');
  expect(() => parseConfig({ SESSION_SECRETS_FILE: file })).toThrow(/SESSION_SECRETS has a secret that looks guessable/);
});
