/**
 * What a run measures about the credential itself, by acting as one more user through the load
 * balancer after the load: the bytes of session state a client sends with every request, and
 * whether logging out revokes a copy of the credential taken before it (an attacker who stole the
 * cookie or token). Mode-agnostic: a login that answers `accessToken` is a bearer token (jwt),
 * anything else is a cookie (with its CSRF token for the logout).
 */
export interface CredentialProbe {
  /** Bytes of session state on every request: the `Cookie` header (session and route cookies) or `Authorization: Bearer …`. */
  stateBytesPerRequest: number;
  /** A copy taken before logout is refused after it (401). */
  revokesStolenCredential: boolean;
  /** The credential as a request sends it (for the server-side size: the session id is in it). */
  credential: { header: 'cookie' | 'authorization'; value: string };
}

const parseSetCookies = (res: Response) =>
  res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .filter((pair) => !/=$/.test(pair));

export async function probeCredential(url: string, user: { username: string; password: string }): Promise<CredentialProbe> {
  const login = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(user) });
  if (login.status !== 200) throw new Error(`probe: login as ${user.username} answered ${login.status}`);
  const body = (await login.json()) as { accessToken?: string; csrfToken?: string };
  // The device cookie (session/device.ts) belongs to the browser, not to the session: only sent to /api/login.
  const cookies = parseSetCookies(login).filter((c) => !/^(__Host-)?device=/.test(c));
  const credential: CredentialProbe['credential'] = body.accessToken
    ? { header: 'authorization', value: `Bearer ${body.accessToken}` }
    : { header: 'cookie', value: cookies.join('; ') };
  const headers = { [credential.header]: credential.value };
  const me = await fetch(`${url}/api/me`, { headers });
  if (me.status !== 200) throw new Error(`probe: the credential did not work before logout (${me.status})`);
  // Logout with the credential (and the CSRF token a cookie session needs).
  const logout = await fetch(`${url}/api/logout`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json', ...(body.csrfToken && !body.accessToken ? { 'x-csrf-token': body.csrfToken } : {}) },
    body: '{}',
  });
  if (logout.status !== 200) throw new Error(`probe: logout answered ${logout.status}`);
  // The stolen copy, replayed on every node the balancer picks (a few tries).
  const replays = await Promise.all(Array.from({ length: 6 }, () => fetch(`${url}/api/me`, { headers }).then((r) => r.status)));
  return {
    stateBytesPerRequest: Buffer.byteLength(`${credential.header === 'cookie' ? 'Cookie' : 'Authorization'}: ${credential.value}`),
    revokesStolenCredential: replays.every((s) => s === 401),
    credential,
  };
}

/** The session id inside an express-session cookie header (`sid=s:<id>.<signature>`), or null. */
export function sessionIdOf(cookieHeader: string): string | null {
  const m = /(?:^|;\s*)(?:__Host-)?sid=([^;]+)/.exec(cookieHeader);
  if (!m) return null;
  const value = decodeURIComponent(m[1]!);
  return value.startsWith('s:') ? value.slice(2, value.lastIndexOf('.')) : null;
}
