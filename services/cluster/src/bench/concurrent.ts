/**
 * "Concurrent writes kept": one session, many simultaneous writes through nginx, and what the
 * store kept of the ones it acknowledged. 100 `GET /api/me` at once (each increments the session's
 * counter) and 40 `POST /api/cart/items` of different items at once. The textbook configuration
 * (whole-session last-write-wins) keeps a fraction; this project's stores keep every one.
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
  const me = () => fetch(`${url}/api/me`, { headers: { cookie: s.cookie } });
  const counts = await Promise.all(Array.from({ length: 100 }, () => me().then(async (r) => (await r.text(), r.status))));
  const final = (await (await me()).json()) as { requests: number };
  const adds = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      fetch(`${url}/api/cart/items`, {
        method: 'POST',
        headers: { cookie: s.cookie, 'content-type': 'application/json', 'x-csrf-token': s.csrf },
        body: JSON.stringify({ sku: `sku-${i}`, qty: 1 }),
      }).then(async (r) => (await r.text(), r.status)),
    ),
  );
  const cart = (await (await fetch(`${url}/api/cart`, { headers: { cookie: s.cookie } })).json()) as { items: unknown[] };
  return {
    counter: { acknowledged: counts.filter((c) => c === 200).length, kept: final.requests - 1 },
    cartLines: { acknowledged: adds.filter((c) => c === 201).length, kept: cart.items.length },
  };
}
