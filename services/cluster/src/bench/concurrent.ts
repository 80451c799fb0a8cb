/**
 * "Concurrent writes kept": one session, many simultaneous writes through nginx, and what the
 * store kept of the ones it acknowledged. 100 `GET /api/me` at once (each increments the session's
 * counter) and 40 `POST /api/cart/items` of different items at once. The textbook configuration
 * (whole-session last-write-wins) keeps a fraction; this project's stores keep every one. In
 * cookie mode the session travels in the responses: like a browser, the client keeps the cookie
 * of the response that arrived last, and that is what is "kept".
 */
export interface ConcurrentWrites {
  counter: { acknowledged: number; kept: number };
  cartLines: { acknowledged: number; kept: number };
}

async function login(url: string, user: number): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: `user${user}`, password: `pass${user}` }),
  });
  if (!res.ok) throw new Error(`concurrent writes: login user${user} failed with ${res.status}`);
  const body = (await res.json()) as { csrfToken: string };
  return {
    cookie: res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; '),
    csrf: body.csrfToken,
  };
}

export async function measureConcurrentWrites(url: string, user: number): Promise<ConcurrentWrites> {
  const s = await login(url, user);
  let jar = s.cookie;
  /** A browser's jar: a response that sets the session cookie replaces it (the last to arrive wins). */
  const keep = (r: Response) => {
    const set = r.headers.getSetCookie().map((c) => c.split(';')[0]!);
    if (set.length) jar = [...jar.split('; ').filter((c) => !set.some((n) => n.split('=')[0] === c.split('=')[0])), ...set].join('; ');
  };
  const me = () => fetch(`${url}/api/me`, { headers: { cookie: s.cookie } });
  const counts = await Promise.all(Array.from({ length: 100 }, () => me().then(async (r) => (await r.text(), keep(r), r.status))));
  const final = (await (await fetch(`${url}/api/me`, { headers: { cookie: jar } })).json()) as { requests: number };
  const before = jar;
  const adds = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      fetch(`${url}/api/cart/items`, {
        method: 'POST',
        headers: { cookie: before, 'content-type': 'application/json', 'x-csrf-token': s.csrf },
        body: JSON.stringify({ sku: `sku-${i}`, qty: 1 }),
      }).then(async (r) => (await r.text(), keep(r), r.status)),
    ),
  );
  const cart = (await (await fetch(`${url}/api/cart`, { headers: { cookie: jar } })).json()) as { items: unknown[] };
  return {
    counter: { acknowledged: counts.filter((c) => c === 200).length, kept: final.requests - 1 },
    cartLines: { acknowledged: adds.filter((c) => c === 201).length, kept: cart.items.length },
  };
}
