// The demo page: log in, send requests, watch which node answers each one.
// Plain ES module, no dependencies, no inline handlers (the CSP allows only 'self' scripts).

const STRIP_SIZE = 20;
const BURST = 10;

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
};

const ui = {
  alert: $('alert'),
  status: $('status'),
  loading: $('loading'),
  loginForm: /** @type {HTMLFormElement} */ ($('login-form')),
  username: /** @type {HTMLInputElement} */ ($('username')),
  password: /** @type {HTMLInputElement} */ ($('password')),
  session: $('session'),
  user: $('user'),
  mode: $('mode'),
  modeExplain: $('mode-explain'),
  age: $('session-age'),
  requests: $('request-count'),
  servedBy: $('served-by'),
  servedBySwatch: $('served-by-swatch'),
  createdOn: $('created-on'),
  logout: /** @type {HTMLButtonElement} */ ($('logout')),
  strip: $('strip'),
  stripSummary: $('strip-summary'),
  send: /** @type {HTMLButtonElement} */ ($('send-10')),
  sendProgress: $('send-progress'),
  cartForm: /** @type {HTMLFormElement} */ ($('cart-form')),
  sku: /** @type {HTMLInputElement} */ ($('sku')),
  qty: /** @type {HTMLInputElement} */ ($('qty')),
  cartAdd: /** @type {HTMLButtonElement} */ ($('cart-add')),
  cartItems: $('cart-items'),
  cartCount: $('cart-count'),
  cartSource: $('cart-source'),
  products: /** @type {HTMLButtonElement[]} */ ([...document.querySelectorAll('button.product')]),
};

/** What the page knows. `me` is null when logged out. */
const state = {
  me: /** @type {null | {user: string, mode: string, loginAt: number, createdOn: string, requests: number}} */ (null),
  csrf: /** @type {string | null} */ (null),
  /**
   * jwt mode's access token: in this variable only, never in localStorage or sessionStorage (any
   * script on the origin could read those; a variable dies with the page). A reload logs out.
   */
  token: /** @type {string | null} */ (null),
  /** The node that answered the latest request (any request). */
  lastNode: /** @type {string | null} */ (null),
  /** Last STRIP_SIZE requests: {node, method, path, status}. */
  history: [],
  busy: false,
};

// ---------------------------------------------------------------------------------------------
// Colours: stable per node name. app-N gets palette slot N-1; any other name a hashed slot.

const PALETTE = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#db2777', '#0d9488', '#b45309', '#4f46e5', '#be123c', '#0369a1'];

export function nodeColour(name) {
  if (!name) return '#94a3b8';
  const m = /(\d+)$/.exec(name);
  if (m) return PALETTE[(Number(m[1]) - 1 + PALETTE.length) % PALETTE.length];
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

// ---------------------------------------------------------------------------------------------
// HTTP

/**
 * One API call. Records it in the strip; returns {status, ok, data, node, retryAfter}
 * (status 0 = the network failed). Never throws.
 */
async function api(method, path, body, { anonymousOk = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    const reply = { status: 0, ok: false, data: null, node: null, retryAfter: null };
    record(method, path, reply, false);
    return reply;
  }
  let data;
  try {
    const text = await res.text();
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null; // e.g. an HTML error page from the load balancer
  }
  const reply = { status: res.status, ok: res.ok, data, node: res.headers.get('X-Served-By'), retryAfter: res.headers.get('Retry-After') };
  // A 401 from the first look for a session just means "not logged in yet": not an error cell.
  record(method, path, reply, anonymousOk && res.status === 401);
  return reply;
}

function record(method, path, reply, expected) {
  state.history.push({ node: reply.node, method, path, status: reply.status, expected });
  if (state.history.length > STRIP_SIZE) state.history.splice(0, state.history.length - STRIP_SIZE);
  if (reply.node) state.lastNode = reply.node;
  renderStrip();
  renderServedBy();
}

/** A human sentence for a failed reply (other than a lost session). */
function describeFailure(reply, doing) {
  const serverSays = reply.data?.error?.message;
  const by = reply.node ? ` (answered by ${reply.node})` : '';
  switch (true) {
    case reply.status === 0:
      return `Could not reach the server while ${doing}: the network request failed. Check that the cluster is running, then try again.`;
    case reply.status === 429: {
      const wait = Number(reply.retryAfter);
      const when = Number.isFinite(wait) && wait > 0 ? `in ${formatDuration(wait * 1000)}` : 'later';
      return `Too many failed logins. Try again ${when}.`;
    }
    case reply.status === 503:
      return `The service is temporarily unavailable while ${doing}${by}: ${serverSays ?? 'try again shortly.'}`;
    case reply.status === 502 || reply.status === 504:
      return `No node could answer while ${doing} (HTTP ${reply.status} from the load balancer). Is the cluster up? Try again shortly.`;
    case reply.status === 403 && reply.data?.error?.code === 'CSRF':
      return `The request was refused (missing or stale CSRF token). Reload the page and try again.`;
    case reply.status === 400 && !!serverSays:
      return serverSays;
    default:
      return `Something went wrong while ${doing}: HTTP ${reply.status}${by}${serverSays ? ` — ${serverSays}` : ''}.`;
  }
}

// ---------------------------------------------------------------------------------------------
// Messages

function showAlert(text) {
  ui.alert.textContent = text;
  ui.status.textContent = '';
}
function showStatus(text) {
  ui.status.textContent = text;
}
function clearMessages() {
  ui.alert.textContent = '';
  ui.status.textContent = '';
}

// ---------------------------------------------------------------------------------------------
// Rendering

function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${String(m % 60).padStart(2, '0')} min`;
}

const MODE_EXPLAIN = {
  shared: 'sessions in Redis: any node can answer',
  sticky: "sessions in one node's memory: you stay on that node",
  database: 'sessions in PostgreSQL: any node can answer',
  cookie: 'the whole session sealed in your cookie: nothing on the server',
  jwt: 'a signed token in this page’s memory: any node verifies it; no cart, no counter',
};

function renderSession() {
  const me = state.me;
  ui.loading.hidden = true;
  ui.loginForm.hidden = !!me;
  ui.session.hidden = !me;
  const controls = [ui.send, ui.sku, ui.qty, ui.cartAdd, ...ui.products];
  for (const c of controls) c.disabled = !me;
  if (!me) {
    renderCart(null);
    return;
  }
  ui.user.textContent = me.user;
  ui.mode.textContent = me.mode;
  ui.mode.dataset.mode = me.mode;
  ui.modeExplain.textContent = MODE_EXPLAIN[me.mode] ?? '';
  ui.requests.textContent = me.requests === undefined || me.requests === null ? '—' : String(me.requests);
  ui.createdOn.textContent = me.createdOn ?? '—';
  renderAge();
}

function renderAge() {
  if (state.me) ui.age.textContent = formatDuration(Date.now() - state.me.loginAt);
}

function renderServedBy() {
  ui.servedBy.textContent = state.lastNode ?? '—';
  ui.servedBySwatch.style.background = nodeColour(state.lastNode);
}

function renderStrip() {
  const cells = [];
  for (const r of state.history) {
    const li = document.createElement('li');
    li.className = 'cell';
    const failed = !r.expected && (r.status === 0 || r.status >= 400);
    if (failed) li.classList.add('cell--error');
    li.dataset.node = r.node ?? '';
    li.dataset.status = String(r.status);
    li.style.setProperty('--node', nodeColour(r.node));
    const outcome = r.status === 0 ? 'network error' : r.expected ? `${r.status} (not logged in)` : String(r.status);
    const label = `${r.method} ${r.path} → ${outcome}, ${r.node ? `served by ${r.node}` : 'no node'}`;
    li.title = label;
    const name = document.createElement('span');
    name.className = 'cell__name';
    name.textContent = r.node ?? '—';
    name.setAttribute('aria-hidden', 'true');
    const sr = document.createElement('span');
    sr.className = 'sr-only';
    sr.textContent = label;
    li.append(name, sr);
    cells.push(li);
  }
  for (let i = state.history.length; i < STRIP_SIZE; i++) {
    const li = document.createElement('li');
    li.className = 'cell cell--empty';
    li.setAttribute('aria-hidden', 'true');
    cells.push(li);
  }
  ui.strip.replaceChildren(...cells);

  const counts = new Map();
  for (const r of state.history) if (r.node) counts.set(r.node, (counts.get(r.node) ?? 0) + 1);
  const parts = [...counts].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }));
  ui.stripSummary.replaceChildren();
  if (!parts.length) {
    ui.stripSummary.textContent = state.history.length ? 'No node answered yet.' : 'No requests yet.';
    return;
  }
  ui.stripSummary.append(`${parts.length} node${parts.length === 1 ? '' : 's'} answered: `);
  parts.forEach(([node, n], i) => {
    const chip = document.createElement('span');
    chip.className = 'chip';
    chip.style.setProperty('--node', nodeColour(node));
    chip.textContent = `${node} × ${n}`;
    if (i) ui.stripSummary.append(' ');
    ui.stripSummary.append(chip);
  });
}

/** The cart, or why there is none (`unavailable`: the mode keeps no cart, in the server's words). */
function renderCart(cart, node, unavailable) {
  const items = cart?.items ?? [];
  ui.cartItems.replaceChildren(
    ...items.map((it) => {
      const li = document.createElement('li');
      li.dataset.sku = it.sku;
      const sku = document.createElement('span');
      sku.className = 'sku';
      sku.textContent = it.sku;
      const qty = document.createElement('span');
      qty.className = 'qty';
      qty.textContent = `× ${it.qty}`;
      li.append(sku, qty);
      return li;
    }),
  );
  if (!items.length) {
    const li = document.createElement('li');
    li.className = 'muted empty';
    li.textContent = unavailable ?? (cart ? 'The cart is empty.' : 'Log in to use the cart.');
    ui.cartItems.append(li);
  }
  ui.cartCount.textContent = String(cart?.count ?? 0);
  ui.cartSource.textContent = cart && node ? ` · last answered by ${node}` : '';
}

// ---------------------------------------------------------------------------------------------
// Session life cycle

/** A protected request answered 401 after we were logged in: the session is gone. */
function sessionLost(reply) {
  const home = state.me?.mode === 'sticky' ? state.me.createdOn : null;
  const by = reply.node ?? 'the load balancer';
  let text;
  if (home && reply.node && home !== reply.node) {
    text = `Your session was lost: it lived only in the memory of node ${home}, and this request was answered by ${by}, which has never seen it (sticky mode). Please log in again.`;
  } else if (state.me?.mode === 'shared') {
    text = `Your session has ended: it is no longer in the shared store (answered by ${by}). Please log in again.`;
  } else {
    text = `Your session was lost or has ended (answered by ${by}). Please log in again.`;
  }
  state.me = null;
  state.csrf = null;
  state.token = null;
  renderSession();
  showAlert(text);
  ui.username.focus();
}

/** Handles a failed reply to a protected request. */
function failed(reply, doing) {
  if (reply.status === 401 && state.me) sessionLost(reply);
  else if (reply.status === 401) {
    state.me = null;
    renderSession();
  } else showAlert(describeFailure(reply, doing));
}

/** GET /api/me: refreshes the session facts. Returns true when logged in. */
async function refreshMe(doing = 'loading the session', opts) {
  const r = await api('GET', '/api/me', undefined, opts);
  if (!r.ok || !r.data?.user) {
    failed(r, doing);
    return false;
  }
  const d = r.data;
  state.me = { user: d.user, mode: d.mode, loginAt: d.loginAt, createdOn: d.createdOn, requests: d.requests };
  if (d.csrfToken) state.csrf = d.csrfToken;
  renderSession();
  return true;
}

async function refreshCart() {
  const r = await api('GET', '/api/cart');
  if (r.status === 501) return renderCart(null, null, r.data?.error?.message);
  if (!r.ok) return failed(r, 'loading the cart');
  renderCart(r.data, r.node);
}

/** Runs one user action at a time (so two requests never race on one session). */
async function exclusive(fn) {
  if (state.busy) return;
  state.busy = true;
  document.body.dataset.busy = 'true';
  try {
    await fn();
  } catch (err) {
    console.error(err);
    showAlert(`Something went wrong on this page: ${err instanceof Error ? err.message : String(err)}. Reload to try again.`);
  } finally {
    state.busy = false;
    delete document.body.dataset.busy;
  }
}

async function login(event) {
  event.preventDefault();
  const username = ui.username.value.trim();
  const password = ui.password.value;
  if (!username || !password) {
    showAlert(!username ? 'Enter a username.' : 'Enter a password.');
    (!username ? ui.username : ui.password).focus();
    return;
  }
  await exclusive(async () => {
    clearMessages();
    showStatus('Logging in…');
    const r = await api('POST', '/api/login', { username, password });
    if (!r.ok) {
      const text = r.status === 401 ? 'Invalid username or password.' : describeFailure(r, 'logging in');
      showAlert(text);
      ui.password.select();
      ui.password.focus();
      return;
    }
    state.csrf = r.data?.csrfToken ?? null;
    state.token = r.data?.accessToken ?? null;
    // Provisional facts until /api/me answers, so a 401 right after login still reads as a lost session.
    state.me = { user: r.data?.user ?? username, mode: '', loginAt: r.data?.loginAt ?? Date.now(), createdOn: r.data?.node ?? r.node ?? '', requests: 0 };
    ui.password.value = '';
    ui.sendProgress.textContent = '';
    clearMessages();
    if (await refreshMe('loading the session')) {
      await refreshCart();
      showStatus(`Logged in as ${state.me?.user ?? username}.`);
      ui.send.focus();
    }
  });
}

async function logout() {
  await exclusive(async () => {
    const r = await api('POST', '/api/logout');
    if (!r.ok && r.status !== 401) return showAlert(describeFailure(r, 'logging out'));
    state.me = null;
    state.csrf = null;
    state.token = null;
    renderSession();
    clearMessages();
    showStatus('Logged out.');
    ui.username.focus();
  });
}

async function sendBurst() {
  await exclusive(async () => {
    clearMessages();
    ui.send.setAttribute('aria-disabled', 'true');
    try {
      for (let i = 1; i <= BURST; i++) {
        ui.sendProgress.textContent = `Sending ${i}/${BURST}…`;
        if (!(await refreshMe('sending requests'))) {
          ui.sendProgress.textContent = `Stopped after ${i - 1}/${BURST}.`;
          return;
        }
      }
      const nodes = new Set(state.history.slice(-BURST).map((r) => r.node));
      ui.sendProgress.textContent = `Done: ${BURST} requests, ${nodes.size} node${nodes.size === 1 ? '' : 's'}.`;
    } finally {
      ui.send.removeAttribute('aria-disabled');
    }
  });
}

async function addToCart(sku, qty) {
  await exclusive(async () => {
    const r = await api('POST', '/api/cart/items', { sku, qty });
    if (r.status === 501) return showAlert(r.data?.error?.message ?? 'This session mode keeps no cart.');
    if (r.status === 413) return showAlert(r.data?.error?.message ?? 'The cart no longer fits in the session cookie.');
    if (!r.ok) return failed(r, 'adding to the cart');
    clearMessages();
    renderCart(r.data, r.node);
    if (ui.sku.value.trim() === sku) ui.sku.value = '';
    showStatus(`Added ${qty} × ${sku} (on ${r.node ?? 'unknown node'}).`);
  });
}

function submitCartForm(event) {
  event.preventDefault();
  const sku = ui.sku.value.trim();
  const qty = Number(ui.qty.value);
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(sku)) {
    showAlert('SKU: use 1–32 letters, digits, _ or -.');
    ui.sku.focus();
    return;
  }
  if (!Number.isInteger(qty) || qty < 1 || qty > 99) {
    showAlert('Quantity: a whole number from 1 to 99.');
    ui.qty.focus();
    return;
  }
  void addToCart(sku, qty);
}

// ---------------------------------------------------------------------------------------------
// Wiring

ui.loginForm.addEventListener('submit', (e) => void login(e));
ui.logout.addEventListener('click', () => void logout());
ui.send.addEventListener('click', () => void sendBurst());
ui.cartForm.addEventListener('submit', submitCartForm);
for (const b of ui.products) b.addEventListener('click', () => void addToCart(b.dataset.sku ?? '', 1));
setInterval(renderAge, 1000);

renderStrip();
renderServedBy();
void exclusive(async () => {
  if (await refreshMe('loading the session', { anonymousOk: true })) await refreshCart();
  else renderSession();
  if (!state.me) ui.username.focus();
});
