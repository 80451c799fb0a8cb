// Session survival: every VU is one user with one long-lived session, and checks on every
// response that the session is still the same one and its counters never went backwards.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e MODE=shared loadtest/survival.js
//
// A 401 for a session that was valid (the VU never logged out) is a lost session: counted in
// sessions_lost (tagged with the node that last served it and the node that answered 401), then
// the VU logs in again and goes on. 5xx and network errors are failed requests (failed_requests),
// not losses: the session may well be intact on the next request. The words and the claims are
// defined once, in lib/claims.js; see loadtest/README.md for the metrics and thresholds.
import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { config, userFor } from './lib/config.js';
import { profile } from './lib/profiles.js';
import { thresholds } from './lib/thresholds.js';
import { failureClass, lossesPerVu } from './lib/claims.js';
import { summaryOutputs } from './lib/summary.js';

export const options = {
  scenarios: { survival: profile() },
  thresholds: thresholds(),
  // One VU = one browser: keep its cookies (sid, and sticky mode's scroute) across iterations.
  noCookiesReset: true,
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  // A stopped node refuses at once; a hung one must not hold a VU for k6's default 60 s.
  // (Per request below: `timeout` is a request parameter, not a global option.)
};

// 401 is an expected answer (a lost session is counted in sessions_lost, not as an HTTP failure),
// and so is 501 (NOT_IN_MODE: a mode without a cart says so, once per VU, see notInMode);
// http_req_failed then means exactly: 5xx other than 501, network errors and unexpected 4xx.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 399 }, 401, 501));

const sessionsLost = new Counter('sessions_lost');
const sessionsStarted = new Counter('sessions_started');
const continuity = new Rate('session_continuity');
const requestsByNode = new Counter('requests_by_node');
const loginDuration = new Trend('login_duration', true);
const failedRequests = new Counter('failed_requests');
// A session write answered 2xx that a later read of the same session did not show (a counter or
// the cart went back below what a write's answer had said): what a store that loses acknowledged
// writes costs (lib/claims.js).
const acknowledgedWritesLost = new Counter('acknowledged_writes_lost');
// A read that showed less than an earlier read, but not less than any write's answer: a stale read
// (a server behind the others), or a dirty one rolled back (it had shown a write that failed, e.g.
// applied by a primary cut off from its replicas, whose WAIT timed out). Reported beside the above.
const readsWentBack = new Counter('reads_went_back');
// A VU that lost more sessions than its share allows (lib/claims.js lossesPerVu): in sticky mode
// only the users of the killed node lose theirs, once (the route cookie is re-pinned to the node
// that answers next, so the restarted node does not take its old clients back).
const lostBeyondShare = new Counter('sessions_lost_beyond_share');
const MAX_LOSSES = lossesPerVu(config);
let losses = 0; // this VU's

const BASE = config.baseUrl;
const JSON_HEADERS = { 'Content-Type': 'application/json' };
const SKUS = ['apple', 'bread', 'cheese', 'dates', 'eggs', 'flour', 'grapes', 'honey'];

/** This VU's session (each VU has its own JS runtime, so module state is per VU). */
let session = null; // { user, loginAt, requests, cartCount (the most any answer showed), cartAcked (the most a write's answer showed), csrf, token, node }

/**
 * What the mode can do, learnt from its answers (the same script runs every mode): a login that
 * answers `accessToken` is a bearer token (jwt mode: sent as Authorization, no CSRF token); a
 * cart answering 501 NOT_IN_MODE, or /api/me without a request counter, is a mode that keeps no
 * such state, and those operations are left out of this VU's mix.
 */
const can = { cart: true, counter: true };

/** The credential headers of this VU's session: a bearer token, or nothing (cookies travel in k6's jar). */
const auth = () => (session && session.token ? { Authorization: `Bearer ${session.token}` } : {});

const servedBy = (res) => res.headers['X-Served-By'] || res.headers['x-served-by'] || '';

function body(res) {
  try {
    return res.json();
  } catch {
    return null;
  }
}

/**
 * When the current request was sent (Date.now()). A failure is recorded when it ends; with `waited`
 * (seconds, tagged on failed_requests) the analysis knows when it was sent: a request sent before a
 * fault that hangs until its timeout says nothing about whether requests sent after it work.
 */
let sentAt = 0;
const failureTags = (kind, res) => ({
  kind,
  status: String(res.status),
  class: failureClass(res.status),
  vu: String(exec.vu.idInTest),
  waited: ((Date.now() - sentAt) / 1000).toFixed(2),
});

/** A response that is neither a node's answer on the session nor a 401: 5xx, network error, other 4xx. */
function failed(res, kind) {
  failedRequests.add(1, failureTags(kind, res));
  if (res.status === 0 || res.status >= 500) return; // the node or the path to it failed; the session may be fine
  // Any other 4xx on a valid session (403 CSRF, 400) means the session is not what it was.
  continuity.add(false, { kind });
  console.warn(`VU ${exec.vu.idInTest} ${kind}: unexpected ${res.status} ${res.body}`);
}

/**
 * The common part of reading a response on this VU's session: count the serving node, then
 * return the parsed body, or null after recording why there is none (a 401 is a lost session;
 * anything else not `expected` is a failed request).
 */
function answer(res, kind, expected) {
  const node = servedBy(res);
  if (node) requestsByNode.add(1, { node });
  if (res.status === 401 && session) {
    lost(kind, node);
    return null;
  }
  const b = body(res);
  if (res.status !== expected || !b) {
    failed(res, kind);
    return null;
  }
  return b;
}

/** A check on a response of this session: continuity, a warning if it broke, and the node it came from. */
function checked(res, kind, ok, what) {
  continuity.add(ok, { kind });
  if (!ok) console.warn(`VU ${exec.vu.idInTest} ${kind}: ${what}`);
  session.node = servedBy(res) || session.node;
}

function login() {
  const { username, password } = userFor(exec.vu.idInTest);
  sentAt = Date.now();
  const res = http.post(`${BASE}/api/login`, JSON.stringify({ username, password }), {
    headers: JSON_HEADERS,
    tags: { name: 'POST /api/login', kind: 'login' },
    timeout: '10s',
  });
  const b = answer(res, 'login', 200);
  if (!b || b.user !== username || !(b.csrfToken || b.accessToken)) {
    if (b) failed(res, 'login');
    sleep(0.5); // back off; the next iteration tries again
    return;
  }
  const node = servedBy(res);
  loginDuration.add(res.timings.duration);
  sessionsStarted.add(1, { node });
  session = { user: username, loginAt: b.loginAt, requests: 0, cartCount: 0, cartAcked: 0, csrf: b.csrfToken, token: b.accessToken, node };
}

/**
 * A 401 on a session that was valid: the session is gone. `answeredBy` is the node that said so:
 * the session's own node (`answer: home`: a live node forgot a session it held, never right) or
 * another one (`other`: the session's node was unreachable, or the route moved).
 */
function lost(kind, answeredBy) {
  const home = session.node || 'unknown';
  sessionsLost.add(1, { node: home, kind, answered_by: answeredBy || 'unknown', answer: answeredBy === home ? 'home' : 'other', vu: String(exec.vu.idInTest) });
  losses++;
  if (losses > MAX_LOSSES) {
    lostBeyondShare.add(1);
    console.warn(`VU ${exec.vu.idInTest}: lost its session ${losses} times (its share is ${MAX_LOSSES})`);
  }
  continuity.add(false, { kind });
  session = null; // log in again on the next iteration
}

function readMe() {
  sentAt = Date.now();
  const res = http.get(`${BASE}/api/me`, { headers: auth(), tags: { name: 'GET /api/me', kind: 'read' }, timeout: '10s' });
  const b = answer(res, 'read', 200);
  if (!b) return;
  if (b.requests === undefined || b.requests === null) can.counter = false;
  const ok = check(b, {
    identity: (x) => x.user === session.user && x.loginAt === session.loginAt,
    ...(can.counter && { counters: (x) => typeof x.requests === 'number' && x.requests > session.requests }),
  });
  checked(res, 'read', ok, `me: expected ${session.user}@${session.loginAt} after ${session.requests}, got ${res.body}`);
  if (can.counter && typeof b.requests === 'number' && b.requests <= session.requests) {
    // Counted once: from here on the counter is what this answer says (the next answers are
    // measured against it, not against the increments already counted as lost).
    acknowledgedWritesLost.add(session.requests - b.requests + 1);
    session.requests = b.requests;
  } else session.requests = Math.max(session.requests, b.requests || 0);
}

function readCart() {
  sentAt = Date.now();
  const res = http.get(`${BASE}/api/cart`, { headers: auth(), tags: { name: 'GET /api/cart', kind: 'read' }, timeout: '10s' });
  if (notInMode(res)) return;
  const b = answer(res, 'read', 200);
  if (!b) return;
  const ok = check(b, { counters: (x) => typeof x.count === 'number' && x.count >= session.cartCount });
  checked(res, 'read', ok, `cart: count went from ${session.cartCount} to ${b.count}`);
  if (typeof b.count === 'number') wentBack(b.count);
  session.cartCount = Math.max(session.cartCount, b.count || 0);
}

/**
 * A cart count below what a write's answer showed is a lost write; below only what a read showed, a
 * read that went back. Each is counted once: the cart is then what this answer says.
 */
function wentBack(count) {
  if (count < session.cartAcked) acknowledgedWritesLost.add(session.cartAcked - count);
  else if (count < session.cartCount) readsWentBack.add(session.cartCount - count);
  else return;
  session.cartAcked = Math.min(session.cartAcked, count);
  session.cartCount = count;
}

function addToCart() {
  const sku = SKUS[Math.floor(Math.random() * SKUS.length)];
  sentAt = Date.now();
  const res = http.post(`${BASE}/api/cart/items`, JSON.stringify({ sku, qty: 1 }), {
    headers: { ...JSON_HEADERS, ...(session.csrf && { 'X-CSRF-Token': session.csrf }), ...auth() },
    tags: { name: 'POST /api/cart/items', kind: 'write' },
    timeout: '10s',
  });
  if (notInMode(res)) return;
  const b = answer(res, 'write', 201);
  if (!b) return;
  // The cart only grows (a line stops at 99). A POST that failed mid-flight may have been applied,
  // so the count may jump by more than one, but it never goes back.
  const ok = check(b, { counters: (x) => typeof x.count === 'number' && x.count >= session.cartCount });
  checked(res, 'write', ok, `add: count went from ${session.cartCount} to ${b.count}`);
  if (typeof b.count === 'number') wentBack(b.count);
  session.cartCount = Math.max(session.cartCount, b.count || 0);
  session.cartAcked = Math.max(session.cartAcked, b.count || 0);
}

/** A 501 NOT_IN_MODE: this mode keeps no cart; leave it out of the mix (not a failure). */
function notInMode(res) {
  if (res.status !== 501) return false;
  const b = body(res);
  if (!b || !b.error || b.error.code !== 'NOT_IN_MODE') return false;
  can.cart = false;
  return true;
}

/** A route that needs no session (GET /api/ping): a store outage must never fail it. */
function ping() {
  sentAt = Date.now();
  const res = http.get(`${BASE}/api/ping`, { tags: { name: 'GET /api/ping', kind: 'noSession' }, timeout: '10s' });
  const node = servedBy(res);
  if (node) requestsByNode.add(1, { node });
  if (res.status !== 200) failedRequests.add(1, failureTags('noSession', res));
}

export default function () {
  // Every metric the thresholds and dashboards name exists even if nothing is ever lost or failed,
  // and keeps getting samples: Prometheus remote write sends a series only for the periods in
  // which it had samples, and rate()/increase() need at least two.
  sessionsLost.add(0);
  failedRequests.add(0);
  acknowledgedWritesLost.add(0);
  readsWentBack.add(0);
  if (!session) login();
  else {
    const r = Math.random();
    if (r < 0.1) ping();
    else if (r < 0.6 || !can.cart) readMe();
    else if (r < 0.7) readCart();
    else addToCart();
  }
  sleep(0.05 + Math.random() * 0.05); // 50-100 ms between requests: a 2-core box must not saturate
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
