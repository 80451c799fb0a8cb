import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resolveK6 } from '../../src/experiment/k6.js';
import { SURVIVAL_SCRIPT, type K6Summary } from '../../src/experiment/run.js';

// What survival.js counts as acknowledged writes lost, with real k6 against a stand-in node whose
// counters go back once by a known amount (as a primary's do when its unreplicated writes are
// discarded): each lost increment counted once, not again at every later answer that is still
// below the old count (which made a lost increment of 50 count about 1,300).
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-survival-counts-'));
const rolledBack = { requests: 0, cart: 0 };
let server: http.Server;
let base = '';

beforeAll(async () => {
  let requests = 0;
  let cart = 0;
  server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-served-by': 'stand-in' });
      res.end(JSON.stringify(body));
    };
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c));
    req.on('end', () => {
      const route = `${req.method} ${req.url}`;
      if (route === 'POST /api/login') return send(200, { user: (JSON.parse(raw) as { username: string }).username, loginAt: 1, csrfToken: 'token' });
      if (route === 'GET /api/ping') return send(200, { ok: true });
      if (route === 'GET /api/me') {
        requests++;
        // The 12th read: the counter goes back to 6 (the increments of reads 7 to 12 are gone, this one's kept).
        if (requests === 12 && !rolledBack.requests) [rolledBack.requests, requests] = [requests - 7, 7];
        return send(200, { user: 'user1', loginAt: 1, requests });
      }
      if (route === 'GET /api/cart') return send(200, { count: cart, items: [] });
      if (route === 'POST /api/cart/items') {
        cart++;
        // At 8 items the cart goes back to 3 before this write: 5 acknowledged items gone.
        if (cart === 9 && !rolledBack.cart) [rolledBack.cart, cart] = [5, 4];
        return send(201, { count: cart });
      }
      send(404, { error: { code: 'NOT_FOUND' } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

it('counts each acknowledged increment that went back once', async () => {
  const summaryPath = path.join(tmp, 'summary.json');
  const vars = { BASE_URL: base, MODE: 'shared', PROFILE: 'experiment', DURATION: '8s', VUS: '1', SUMMARY_PATH: summaryPath };
  await new Promise<void>((resolve) =>
    execFile(resolveK6(), ['run', '--quiet', '--no-usage-report', ...Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`]), SURVIVAL_SCRIPT], { timeout: 60_000 }, () =>
      resolve(),
    ),
  );
  const summary = JSON.parse(fs.readFileSync(summaryPath, 'utf8')) as K6Summary;
  // Both counters went back during the run (about 100 requests, half reads of /api/me, 3 in 10 cart writes).
  expect(rolledBack).toEqual({ requests: 5, cart: 5 });
  // The reads' 5 increments, and the cart's 5 items as the next write's answer shows them (4: it
  // carries its own item) or the next read's (5).
  expect([10, 9]).toContain(summary.metrics.acknowledged_writes_lost!.values.count);
  expect(summary.metrics.reads_went_back!.values.count).toBe(0);
}, 90_000);
