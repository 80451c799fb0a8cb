import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kill, REPO_ROOT } from '../../src/cluster.js';
import { startCluster } from '../../../../testkit/cluster.js';

// The demo page in a real browser (Debian's chromium, driven by playwright-core) against local
// clusters behind nginx: shared mode survives a node kill, sticky mode loses the session visibly.
//
// Screenshots go to test-artifacts/ on every run. The two shown in the README (docs/*.png) are
// written when missing, or refreshed with UPDATE_SCREENSHOTS=1 (so a plain run does not dirty Git).

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const DOCS = path.join(REPO_ROOT, 'docs');

type Cluster = Awaited<ReturnType<typeof startCluster>>;
let browser: Browser;
let shared: Cluster;
let sticky: Cluster;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}. Install it with \`sudo apt-get install chromium\` (scripts/setup.sh does this), or set CHROMIUM_PATH.`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // Started side by side; each assigned as soon as it is up, so afterAll stops whatever did start.
  const started = await Promise.allSettled([
    chromium
      .launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
          '--disable-quic',
        ],
      })
      .then((b) => (browser = b)),
    startCluster({ mode: 'shared', nodes: 3 }).then((c) => (shared = c)),
    startCluster({ mode: 'sticky', nodes: 3 }).then((c) => (sticky = c)),
  ]);
  const failure = started.find((r) => r.status === 'rejected');
  if (failure) throw failure.reason;
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([browser?.close(), shared?.stop(), sticky?.stop()]);
});

/** A fresh browser context (its own cookies) on the cluster's page; page errors fail the test. */
async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 860 }, deviceScaleFactor: 1 });
  context.setDefaultTimeout(10_000); // a missing element fails fast, with the selector in the message
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('console', (msg) => {
    // 401s after a lost session are expected network errors in the console; CSP violations are not.
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) errors.push(msg.text());
  });
  await page.goto(url);
  await page.getByTestId('login-form').waitFor({ state: 'visible' });
  return { page, errors };
}

async function logIn(page: Page, username: string, password: string, submit: 'click' | 'enter' = 'click'): Promise<void> {
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  if (submit === 'enter') await page.getByLabel('Password', { exact: true }).press('Enter');
  else await page.getByRole('button', { name: 'Log in', exact: true }).click();
  // A login is a scrypt hash: on two cores shared with the rest of the suite it can take seconds.
  // If the page shows an error instead, that is the failure to report.
  await page
    .getByTestId('session')
    .waitFor({ state: 'visible', timeout: 30_000 })
    .catch(async (err: Error) => {
      throw new Error(`login as ${username} did not show the session; the page's alert: "${await text(page, 'alert')}" (${err.message})`);
    });
  await expect.poll(() => page.getByTestId('user').textContent()).toBe(username);
}

const text = async (page: Page, testId: string) => ((await page.getByTestId(testId).textContent()) ?? '').trim();
const requestCount = async (page: Page) => Number(await text(page, 'request-count'));

/** Clicks "Send 10 requests" and waits for the ten to finish (or the burst to stop on an error). */
async function sendTen(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Send 10 requests' }).click();
  await expect.poll(() => text(page, 'send-progress'), { timeout: 10_000 }).toMatch(/^(Done|Stopped)/);
}

/** Nodes of the last `n` cells of the request strip, oldest first. */
async function stripNodes(page: Page, n = 20): Promise<string[]> {
  const nodes = await page.locator('[data-testid="request-strip"] li[data-node]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node') ?? ''));
  return nodes.slice(-n);
}

async function screenshot(page: Page, name: string, docsName?: string): Promise<void> {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (docsName) {
    const target = path.join(DOCS, docsName);
    if (process.env.UPDATE_SCREENSHOTS === '1' || !fs.existsSync(target)) {
      fs.mkdirSync(DOCS, { recursive: true });
      fs.copyFileSync(file, target);
    }
  }
}

describe('the demo page in a browser', { timeout: 60_000 }, () => {
  it('shared mode: requests spread over nodes, and the session and cart survive killing the serving node', async () => {
    const { page, errors } = await openPage(shared.url);
    await logIn(page, 'alice', 'alice-password');
    expect(await text(page, 'mode')).toBe('shared');

    // Put something in the cart before the kill.
    await page.getByRole('button', { name: '+ Tea' }).click();
    await expect.poll(() => text(page, 'cart-count')).toBe('1');
    await page.getByLabel('SKU', { exact: true }).fill('book-42');
    await page.getByLabel('Quantity', { exact: true }).fill('2');
    await page.getByLabel('Quantity', { exact: true }).press('Enter'); // the form submits from the keyboard
    await expect.poll(() => text(page, 'cart-count')).toBe('3');

    await sendTen(page);
    const burst = await stripNodes(page, 10);
    expect(burst).toHaveLength(10);
    expect(new Set(burst).size).toBeGreaterThanOrEqual(2); // round-robin: several nodes answer one session
    expect(await text(page, 'alert')).toBe('');
    await screenshot(page, 'browser-shared-before-kill', 'screenshot-shared.png');

    const before = await requestCount(page);
    const victim = await text(page, 'served-by');
    expect(victim).toMatch(/^app-\d+$/);
    await kill(victim, { dir: shared.dir, signal: 'KILL' });

    await sendTen(page);
    expect(await text(page, 'send-progress')).toMatch(/^Done/);
    expect(await page.getByTestId('session').isVisible()).toBe(true); // still logged in
    expect(await requestCount(page)).toBe(before + 10); // the counter continues on the other nodes
    const after = await stripNodes(page, 10);
    expect(after).not.toContain(victim);

    // Reload: the page finds the session again, and the cart from before the kill.
    await page.reload();
    await page.getByTestId('session').waitFor({ state: 'visible' });
    await expect.poll(() => text(page, 'cart-count')).toBe('3');
    expect(await requestCount(page)).toBe(before + 11);
    expect(await page.locator('[data-testid="cart-items"] li[data-sku]').evaluateAll((els) => els.map((e) => e.textContent))).toEqual(['tea× 1', 'book-42× 2']);
    expect(await text(page, 'served-by')).not.toBe(victim);
    await screenshot(page, 'browser-shared-after-kill');
    await page.setViewportSize({ width: 390, height: 844 }); // a phone: one column, nothing cut off
    await sendTen(page);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await screenshot(page, 'browser-shared-phone');
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('sticky mode: one node answers everything; killing it loses the session with a clear message, and logging in again works', async () => {
    const { page, errors } = await openPage(sticky.url);
    await logIn(page, 'bob', 'bob-password');
    expect(await text(page, 'mode')).toBe('sticky');
    await page.getByRole('button', { name: '+ Coffee' }).click();
    await expect.poll(() => text(page, 'cart-count')).toBe('1');

    await sendTen(page);
    const burst = await stripNodes(page, 10);
    expect(burst).toHaveLength(10);
    expect(new Set(burst).size).toBe(1); // affinity: one node for the whole session
    const home = burst[0]!;
    expect(await text(page, 'served-by')).toBe(home);
    expect(await text(page, 'created-on')).toBe(home);
    await screenshot(page, 'browser-sticky-before-kill');

    await kill(home, { dir: sticky.dir, signal: 'KILL' });
    await sendTen(page);

    const alert = page.getByTestId('alert');
    await expect.poll(() => alert.textContent()).toMatch(/session was lost/i);
    const message = (await page.getByRole('alert').textContent()) ?? ''; // announced: role="alert"
    expect(message).toContain(home);
    expect(message).toMatch(/log in again/i);
    await page.getByTestId('login-form').waitFor({ state: 'visible' });
    expect(await page.getByTestId('session').isVisible()).toBe(false);
    expect(await page.evaluate<string>('document.activeElement && document.activeElement.id')).toBe('username'); // ready to type
    await screenshot(page, 'browser-sticky-lost', 'screenshot-sticky-lost.png');

    // Log in again (from the keyboard this time): a new session on a live node.
    await logIn(page, 'bob', 'bob-password', 'enter');
    expect(await text(page, 'alert')).toBe('');
    const newHome = await text(page, 'served-by');
    expect(newHome).toMatch(/^app-\d+$/);
    expect(newHome).not.toBe(home);
    expect(await requestCount(page)).toBe(1);
    expect(await text(page, 'cart-count')).toBe('0'); // the old cart died with its node
    await screenshot(page, 'browser-sticky-logged-in-again');
    expect(errors).toEqual([]);
    await page.context().close();
  });
});

describe('the demo page in the other modes', { timeout: 60_000 }, () => {
  // One small cluster per mode, started in its test: the same page, the same steps.
  it.each(['database', 'cookie', 'jwt'] as const)(
    '%s mode: the page shows the mode, works through a node kill, and keeps the credential where the mode says',
    async (mode) => {
      const cluster = await startCluster({ mode, nodes: 2 });
      try {
        const { page, errors } = await openPage(cluster.url);
        await logIn(page, 'alice', 'alice-password');
        expect(await text(page, 'mode')).toBe(mode);
        await sendTen(page);
        expect(new Set(await stripNodes(page, 10)).size).toBe(2); // any node serves this session
        if (mode === 'jwt') {
          // No counter and no cart in this mode, said on the page, and the token only in memory.
          expect(await text(page, 'request-count')).toBe('—');
          await page.getByRole('button', { name: '+ Tea' }).click();
          await expect.poll(() => text(page, 'alert')).toMatch(/^jwt mode keeps no state/);
          const stored = await page.evaluate<string>('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie');
          expect(stored).not.toMatch(/eyJ/);
        } else {
          expect(await requestCount(page)).toBeGreaterThanOrEqual(10);
          await page.getByRole('button', { name: '+ Tea' }).click();
          await expect.poll(() => text(page, 'cart-count')).toBe('1');
        }
        const victim = await text(page, 'served-by');
        await kill(victim, { dir: cluster.dir, signal: 'KILL' });
        await sendTen(page);
        expect(await text(page, 'send-progress')).toMatch(/^Done/);
        expect(await page.getByTestId('session').isVisible()).toBe(true);
        await page.reload();
        if (mode === 'jwt') {
          // The token lived in the page's memory: a reload is a logout.
          await page.getByTestId('login-form').waitFor({ state: 'visible' });
        } else {
          await page.getByTestId('session').waitFor({ state: 'visible' });
          await expect.poll(() => text(page, 'cart-count')).toBe('1');
        }
        await screenshot(page, `browser-${mode}`);
        expect(errors).toEqual([]);
        await page.context().close();
      } finally {
        await cluster.stop();
      }
    },
    90_000,
  );
});
