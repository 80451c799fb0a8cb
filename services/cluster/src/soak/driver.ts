/**
 * The soak's load: `users` virtual users against nginx, each in a loop until stopped:
 * log in as a random demo user (user1..userPOOL, so thousands of distinct users pass through),
 * read `/api/me` a few times, add one to three items to the cart, read the cart, and then
 * either log out (half of the sessions) or abandon the session (drop the cookie: it must expire
 * by itself). Every response is checked; anything but the expected status is an error.
 */
export interface DriverOptions {
  url: string;
  users: number;
  /** Demo users to pick from (the nodes' DEMO_USERS). */
  pool: number;
  /** Pause between one user's requests, ms. */
  thinkMs: number;
  /** Log out every session instead of abandoning half (the warm-up: it leaves no session behind). */
  logoutAll?: boolean;
}

export interface Window {
  requests: number;
  errors: number;
  /** Error kinds: "GET /api/me 503", "network", … */
  errorKinds: Record<string, number>;
  latenciesMs: number[];
  logins: number;
  logouts: number;
  abandoned: number;
}

const emptyWindow = (): Window => ({ requests: 0, errors: 0, errorKinds: {}, latenciesMs: [], logins: 0, logouts: 0, abandoned: 0 });

/** A cookie jar and the CSRF token: one browser. */
class Browser {
  private readonly cookies = new Map<string, string>();
  csrf = '';

  constructor(private readonly base: string) {}

  async send(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> | null; ms: number }> {
    const headers: Record<string, string> = {};
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && this.csrf) headers['x-csrf-token'] = this.csrf;
    const t0 = performance.now();
    const res = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    const ms = performance.now() - t0;
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0]!;
      const eq = pair.indexOf('=');
      const value = pair.slice(eq + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(pair.slice(0, eq));
      else this.cookies.set(pair.slice(0, eq), value);
    }
    let json: Record<string, unknown> | null = null;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      /* not JSON */
    }
    if (json && typeof json.csrfToken === 'string') this.csrf = json.csrfToken;
    return { status: res.status, json, ms };
  }

  /** Forget the session cookie (abandon it), keep the rest (sticky mode's route cookie). */
  dropSession(): void {
    for (const name of [...this.cookies.keys()]) if (name === 'sid' || name === '__Host-sid') this.cookies.delete(name);
    this.csrf = '';
  }
}

export class Driver {
  private window = emptyWindow();
  private total = emptyWindow();
  private stopping = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly o: DriverOptions) {}

  start(): void {
    this.loops = Array.from({ length: this.o.users }, (_, i) => this.loop(i));
  }

  /** Stops every user after its current request; resolves when all have stopped. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  /** What happened since the last call. */
  takeWindow(): Window {
    const w = this.window;
    this.window = emptyWindow();
    return w;
  }

  /** Everything since the start, with the p95 over every request. */
  totals(): Omit<Window, 'latenciesMs'> & { p95Ms: number | null } {
    const { latenciesMs, ...rest } = this.total;
    return { ...rest, p95Ms: percentile(latenciesMs, 95) };
  }

  private count(kind: 'logins' | 'logouts' | 'abandoned'): void {
    this.window[kind]++;
    this.total[kind]++;
  }

  private async step(b: Browser, method: string, path: string, expected: number, body?: unknown): Promise<boolean> {
    let status: number | string;
    try {
      const r = await b.send(method, path, body);
      // The error code from the body ({"error": {"code"}}), so a 503 says which: STORE_UNAVAILABLE, BUSY, …
      const code = (r.json?.error as { code?: unknown } | undefined)?.code;
      status = r.status === expected || typeof code !== 'string' ? r.status : `${r.status} ${code}`;
      this.window.latenciesMs.push(r.ms);
      this.total.latenciesMs.push(r.ms);
    } catch {
      status = 'network';
    }
    for (const w of [this.window, this.total]) w.requests++;
    if (status === expected) return true;
    const kind = `${method} ${path} ${status}`;
    for (const w of [this.window, this.total]) {
      w.errors++;
      w.errorKinds[kind] = (w.errorKinds[kind] ?? 0) + 1;
    }
    return false;
  }

  private async pause(): Promise<void> {
    if (this.o.thinkMs > 0) await new Promise((r) => setTimeout(r, this.o.thinkMs * (0.5 + Math.random())));
  }

  private async loop(vu: number): Promise<void> {
    const b = new Browser(this.o.url);
    let round = 0;
    while (!this.stopping) {
      round++;
      const n = 1 + Math.floor(Math.random() * this.o.pool);
      if (!(await this.step(b, 'POST', '/api/login', 200, { username: `user${n}`, password: `pass${n}` }))) {
        await this.pause();
        continue;
      }
      this.count('logins');
      const reads = 3 + Math.floor(Math.random() * 6);
      const adds = 1 + Math.floor(Math.random() * 3);
      let ok = true;
      for (let i = 0; i < reads && ok && !this.stopping; i++) {
        await this.pause();
        ok = await this.step(b, 'GET', '/api/me', 200);
      }
      for (let i = 0; i < adds && ok && !this.stopping; i++) {
        await this.pause();
        ok = await this.step(b, 'POST', '/api/cart/items', 201, { sku: `sku-${vu}-${i}`, qty: 1 });
      }
      if (ok && !this.stopping) {
        await this.pause();
        ok = await this.step(b, 'GET', '/api/cart', 200);
      }
      // Half log out, half walk away (alternating per user, so exactly half over the run).
      if ((this.o.logoutAll || round % 2 === 0) && ok) {
        await this.pause();
        if (await this.step(b, 'POST', '/api/logout', 200)) this.count('logouts');
      } else this.count('abandoned');
      b.dropSession();
      await this.pause();
    }
  }
}

export function percentile(values: number[], p: number): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
