import { MODE_DESCRIPTORS } from '@session-cluster/app/modes';
import { createCodec, SESSION_PREFIX } from '@session-cluster/app/session';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { ClusterState, Mode } from '../cluster.js';

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

export async function probeCredential(
  url: string,
  user: { username: string; password: string },
  /** Runs while the session is live (before the logout): what it occupies on the server. */
  measure: (credential: CredentialProbe['credential']) => Promise<number | null> = async () => null,
): Promise<CredentialProbe & { serverBytesPerSession: number | null }> {
  const login = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(user) });
  if (login.status !== 200) throw new Error(`probe: login as ${user.username} answered ${login.status}`);
  const body = (await login.json()) as { accessToken?: string; csrfToken?: string };
  // The device cookie (session/login/device.ts) belongs to the browser, not to the session: only sent to /api/login.
  const cookies = parseSetCookies(login).filter((c) => !/^(__Secure-)?device=/.test(c));
  const credential: CredentialProbe['credential'] = body.accessToken
    ? { header: 'authorization', value: `Bearer ${body.accessToken}` }
    : { header: 'cookie', value: cookies.join('; ') };
  const headers = { [credential.header]: credential.value };
  const me = await fetch(`${url}/api/me`, { headers });
  if (me.status !== 200) throw new Error(`probe: the credential did not work before logout (${me.status})`);
  const serverBytesPerSession = await measure(credential);
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
    serverBytesPerSession,
  };
}

/** The session id inside an express-session cookie header (`sid=s:<id>.<signature>`), or null. */
export function sessionIdOf(cookieHeader: string): string | null {
  const m = /(?:^|;\s*)(?:__Host-)?sid=([^;]+)/.exec(cookieHeader);
  if (!m) return null;
  const value = decodeURIComponent(m[1]!);
  return value.startsWith('s:') ? value.slice(2, value.lastIndexOf('.')) : null;
}

/** How the probe reads what a session occupies in the stores (local parts, or compose containers). */
export interface StoreAccess {
  /** nginx: sticky mode's session is read back through the API. */
  url: string;
  /** Redis's MEMORY USAGE of a key in shared mode's store; null where there is none. */
  redisMemoryUsage(key: string): Promise<number | null>;
  /** PostgreSQL's size of a session's row (database mode); null where there is none. */
  sessionRowBytes(sid: string): Promise<number | null>;
}

/** The local cluster's stores, reached on their loopback ports. */
export function localStoreAccess(state: ClusterState): StoreAccess {
  const redisPart = state.parts.find((p) => p.kind === 'redis');
  const pgPart = state.parts.find((p) => p.kind === 'postgres');
  return {
    url: state.url,
    async redisMemoryUsage(key) {
      if (!redisPart) return null;
      const redis = new Redis({ host: '127.0.0.1', port: redisPart.port, lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.connect();
        return Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) || null;
      } finally {
        redis.disconnect();
      }
    },
    async sessionRowBytes(sid) {
      if (!pgPart) return null;
      const sql = new pg.Client({ connectionString: pgPart.url });
      try {
        await sql.connect();
        const r = await sql.query(SESSION_ROW_BYTES, [sid]);
        return (r.rows[0] as { bytes: number } | undefined)?.bytes ?? null;
      } finally {
        await sql.end();
      }
    },
  };
}

/** The size of one session's row, as PostgreSQL stores it. */
export const SESSION_ROW_BYTES = 'SELECT pg_column_size(s.*) AS bytes FROM sessions s WHERE sid = $1';

/**
 * Bytes one logged-in session occupies on the server, in the mode's own terms: Redis's MEMORY
 * USAGE of its key (shared), PostgreSQL's size of its row (database), the serialized session a
 * sticky node keeps in memory (its heap adds object overhead on top), and 0 where nothing is
 * stored per session (cookie; jwt stores only a denylist entry after a logout).
 */
export async function serverBytesOf(mode: Mode, store: StoreAccess, credential: CredentialProbe['credential']): Promise<number | null> {
  const sid = credential.header === 'cookie' ? sessionIdOf(credential.value) : null;
  const { sessions } = MODE_DESCRIPTORS[mode];
  if (sessions === 'client') return 0;
  if (sessions === 'memory') {
    const codec = createCodec({ path: '/', httpOnly: true, secure: false, sameSite: 'lax' });
    const me = (await (await fetch(`${store.url}/api/me`, { headers: { cookie: credential.value } })).json()) as {
      user: string;
      loginAt: number;
      createdOn: string;
      requests: number;
    };
    return Buffer.byteLength(codec.stringify({ cookie: codec.defaultCookie(), user: me.user, loginAt: me.loginAt, node: me.createdOn, requests: me.requests, cart: [] } as never));
  }
  if (!sid) return null;
  return sessions === 'redis' ? store.redisMemoryUsage(`${SESSION_PREFIX}${sid}`) : store.sessionRowBytes(sid);
}
