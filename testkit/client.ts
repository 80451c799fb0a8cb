/**
 * A minimal HTTP client with one cookie jar, the way a browser or a k6 VU would hold a session.
 * Sends no Origin/Sec-Fetch-Site unless told, like curl.
 */
export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

export class Client {
  readonly cookies = new Map<string, string>();
  csrf: string | undefined;

  constructor(public base: string) {}

  /** The session id inside the signed `sid` cookie (`s:<id>.<signature>`): the store's key without its prefix. */
  sessionId(): string {
    const raw = this.cookies.get('sid');
    if (raw === undefined) throw new Error('this client holds no sid cookie');
    return decodeURIComponent(raw).slice(2).split('.')[0]!;
  }

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const h: Record<string, string> = { ...headers };
    if (this.cookies.size && !('cookie' in h)) h.cookie = this.cookieHeader();
    if (body !== undefined) h['content-type'] ??= 'application/json';
    if (this.csrf && method !== 'GET' && !('x-csrf-token' in h)) h['x-csrf-token'] = this.csrf;
    const res = await fetch(this.base + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      redirect: 'manual',
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    if (parsed && typeof parsed === 'object' && 'csrfToken' in parsed) this.csrf = (parsed as { csrfToken: string }).csrfToken;
    return { status: res.status, headers: res.headers, body: parsed };
  }

  get(path: string, headers?: Record<string, string>) {
    return this.request('GET', path, undefined, headers);
  }
  post(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.request('POST', path, body ?? {}, headers);
  }
  del(path: string, headers?: Record<string, string>) {
    return this.request('DELETE', path, undefined, headers);
  }
  login(username = 'user1', password = username.startsWith('user') ? username.replace('user', 'pass') : `${username}-password`) {
    return this.post('/api/login', { username, password });
  }
  /** A second client holding the same cookies, pointed at another node. */
  on(base: string): Client {
    const c = new Client(base);
    for (const [k, v] of this.cookies) c.cookies.set(k, v);
    c.csrf = this.csrf;
    return c;
  }
}
