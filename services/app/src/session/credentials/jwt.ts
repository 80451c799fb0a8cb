import { createHash, hkdfSync } from 'node:crypto';
import type { Request } from 'express';
import type { Redis } from 'ioredis';
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { storeUnavailable } from '../../errors.js';
import type { ClientCredential } from './client-session.js';

/**
 * Bearer access tokens (RFC 6750) as RFC 8725 asks: one pinned algorithm (HS256, and `jose` is
 * told so on every verify: `alg: none`, RS256 or any other is refused before a key is looked at),
 * `kid` naming the secret (the first of SESSION_SECRETS signs, every one verifies: rotation), a
 * 256-bit key derived per secret with HKDF (never the raw secret), `iss`, `aud`, `iat`, `exp` and
 * a `jti` (the session id), all checked.
 *
 * Why jose and not jsonwebtoken: jose has no dependencies, pins algorithms per call, never
 * accepts `alg: none` for a key, and is maintained by the author of the JOSE implementations
 * most libraries test against; jsonwebtoken's history (CVE-2022-23529/23539/23540/23541) is one of
 * defaults that had to be taken back.
 *
 * Revocation needs state, and this mode keeps the least that works, in Redis: logout denies the
 * token's `jti` until its `exp` (a key that expires with it), and "log out everywhere" stores the
 * moment, on the Redis server's clock, up to which a user's tokens are void: it is compared with
 * the token's `issuedAt`, on the same clock, so a node whose clock runs ahead cannot issue a token
 * that outlives it. The token carries the identity only: the request counter and the cart are
 * server state this mode does not keep (501 NOT_IN_MODE), and a token is not rewritten per request.
 *
 * A denylist fails open when it is lost: a Redis restarted without its data, replaced by an empty
 * one, flushed, or a replica promoted before it had the last entries would let revoked tokens back
 * in. So the revocation data carries an *epoch*: the Redis server it lives on (its run id, new at
 * every start of a server) and the moment it began there. Tokens carry the moment they were issued
 * (`issuedAt`, ms), and are issued only once the epoch exists. A token issued before the epoch began
 * cannot be proved unrevoked and is refused (fail closed: its user logs in again), counted in
 * `session_cluster_revocation_unprovable_total` and logged when the epoch begins. Every way of
 * losing the data either empties it (no epoch) or moves it to another server process (another run
 * id), so either starts a new epoch; the one loss an epoch cannot see is on the same server
 * process: an entry evicted under memory pressure (Redis must keep `maxmemory-policy noeviction`,
 * its default) or a split brain, where a cut-off old primary keeps serving the nodes that still
 * reach it.
 * Checking the epoch, the token's denial and its user's cut-off is one script call per request.
 */
export const JWT_ISSUER = 'session-cluster';
export const JWT_AUDIENCE = 'session-cluster-api';
export const DENY_PREFIX = 'jwt:deny:';
export const VOID_BEFORE_PREFIX = 'jwt:void-before:';
export const EPOCH_KEY = 'jwt:epoch';
/** How far another node's clock may run ahead: a token issued (`iat`) further in the future is refused. */
export const CLOCK_SKEW_S = 5;

/**
 * KEYS: the epoch, the token's denial, its user's cut-off. ARGV: the run id of the server this
 * node's connection reaches. The epoch is kept while it names that server, else begun anew now.
 * Times are the server's (TIME, ms), so nodes' clocks never enter the comparison. Returns
 * { epoch start, now, denied (0/1), cut-off or '', 1 if begun by this call }.
 */
const CHECK = `
local t = redis.call('TIME')
local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))
local epoch = redis.call('GET', KEYS[1])
local since = nil
if epoch then
  local sep = string.find(epoch, '|', 1, true)
  if sep and string.sub(epoch, 1, sep - 1) == ARGV[1] then since = string.sub(epoch, sep + 1) end
end
local begun = 0
if not since then
  since = now
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. since)
  begun = 1
end
return { since, now, redis.call('EXISTS', KEYS[2]), redis.call('GET', KEYS[3]) or '', begun }
`;

interface CheckingRedis extends Redis {
  jwtCheck(n: number, ...args: string[]): Promise<[string, string, number, string, number]>;
}

export interface JwtOptions {
  secrets: string[];
  ttlS: number;
  /** The aux connection (db N+1): the denylist and the per-user cut-off live beside the limiter. */
  redis: Redis;
  /** Called for each token refused because its revocation state cannot be proved (a metric). */
  onUnprovable?: () => void;
  /** Told once each time this node begins a new epoch (a log line). */
  onEpoch?: (epoch: { server: string; since: number }) => void;
}

const kidOf = (secret: string) => createHash('sha256').update(`jwt-kid:${secret}`).digest('base64url').slice(0, 8);
const keyOf = (secret: string) => new Uint8Array(hkdfSync('sha256', secret, 'session-cluster jwt', 'HS256 v1', 32));

export interface JwtCredential extends ClientCredential {
  /** Signs the access token of a session that just logged in. */
  issue(sid: string, user: string, loginAt: number, node: string): Promise<{ accessToken: string; expiresIn: number }>;
  /** "Log out everywhere": every token of `user` issued up to now is void. */
  voidAll(user: string): Promise<void>;
}

export function jwtCredential(opts: JwtOptions): JwtCredential {
  const keys = new Map(opts.secrets.map((s) => [kidOf(s), keyOf(s)]));
  const signKid = kidOf(opts.secrets[0]!);
  if (!('jwtCheck' in opts.redis)) opts.redis.defineCommand('jwtCheck', { lua: CHECK });
  const redis = opts.redis as CheckingRedis;

  // The run id of the server this connection reaches: asked again after every reconnection (the
  // connection may now reach a restarted, replaced or promoted server), never assumed.
  let server: Promise<string> | null = null;
  const serverId = () =>
    (server ??= redis.info('server').then(
      (info) => {
        const id = /^run_id:([0-9a-f]+)\r?$/m.exec(info)?.[1];
        if (!id) throw new Error('INFO server has no run_id');
        return id;
      },
      (err: unknown) => {
        server = null;
        throw err;
      },
    ));
  redis.on('close', () => {
    server = null;
  });

  /** The epoch's start and the server's time (ms), whether the token is denied, and its user's cut-off: one call. */
  async function check(sid: string, user: string) {
    const id = await serverId();
    const [since, now, denied, voidBefore, begun] = await redis.jwtCheck(3, EPOCH_KEY, DENY_PREFIX + sid, VOID_BEFORE_PREFIX + user, id);
    if (begun === 1) opts.onEpoch?.({ server: id, since: Number(since) });
    return { since: Number(since), now: Number(now), denied: denied === 1, voidBefore: voidBefore === '' ? null : Number(voidBefore) };
  }

  /** The Redis server's time (ms), the one clock tokens' `issuedAt` and the cut-offs are read on; begins the epoch if need be. */
  async function serverNow(): Promise<number> {
    try {
      return (await check('-', '-')).now;
    } catch (err) {
      throw storeUnavailable(err);
    }
  }

  async function verify(token: string) {
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      return null;
    }
    const key = kid ? keys.get(kid) : undefined;
    if (!key) return null; // a retired or unknown key
    try {
      // maxTokenAge makes jose check `iat` too: not in the future beyond the allowed skew.
      const { payload } = await jwtVerify(token, key, {
        algorithms: ['HS256'],
        issuer: JWT_ISSUER,
        audience: JWT_AUDIENCE,
        requiredClaims: ['sub', 'jti', 'iat', 'exp'],
        maxTokenAge: opts.ttlS,
        clockTolerance: CLOCK_SKEW_S,
      });
      if (typeof payload.loginAt !== 'number' || typeof payload.issuedAt !== 'number' || typeof payload.node !== 'string') return null;
      return { sid: payload.jti!, user: payload.sub!, loginAt: payload.loginAt, issuedAt: payload.issuedAt, node: payload.node, exp: payload.exp! };
    } catch {
      return null; // bad signature, expired, wrong issuer or audience, malformed
    }
  }

  return {
    async read(req: Request) {
      const m = /^Bearer ([A-Za-z0-9_-]{1,2000}\.[A-Za-z0-9_-]{1,4000}\.[A-Za-z0-9_-]{1,200})$/.exec(req.headers.authorization ?? '');
      if (!m) return null;
      const claims = await verify(m[1]!);
      if (!claims) return null;
      let state: Awaited<ReturnType<typeof check>>;
      try {
        state = await check(claims.sid, claims.user);
      } catch (err) {
        throw storeUnavailable(err);
      }
      if (claims.issuedAt < state.since) {
        opts.onUnprovable?.();
        return null;
      }
      if (state.denied || (state.voidBefore !== null && claims.issuedAt <= state.voidBefore)) return null;
      return { sid: claims.sid, fields: { user: claims.user, loginAt: claims.loginAt, node: claims.node } };
    },
    // A token is not rewritten: the identity it carries does not change after login, and the
    // login route asks for the token itself (issue).
    async save() {},
    async destroy(req) {
      const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
      const claims = m ? await verify(m[1]!) : null;
      if (!claims) return;
      const ttl = Math.max(1, claims.exp - Math.floor(Date.now() / 1000));
      try {
        await redis.set(DENY_PREFIX + claims.sid, '1', 'EX', ttl);
      } catch (err) {
        throw storeUnavailable(err);
      }
    },
    async issue(sid, user, loginAt, node) {
      // The epoch first: a token is always younger than the revocation data that can vouch for it,
      // on the server's clock (`issuedAt`; iat is the node's, for the standard checks).
      const issuedAt = await serverNow();
      const accessToken = await new SignJWT({ loginAt, node, issuedAt })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: signKid })
        .setIssuer(JWT_ISSUER)
        .setAudience(JWT_AUDIENCE)
        .setSubject(user)
        .setJti(sid)
        .setIssuedAt()
        .setExpirationTime(`${opts.ttlS}s`)
        .sign(keys.get(signKid)!);
      return { accessToken, expiresIn: opts.ttlS };
    },
    async voidAll(user) {
      // The server's clock, as each token's issuedAt: no node's clock enters the comparison.
      const now = await serverNow();
      try {
        // Tokens live at most ttlS: the cut-off can go after that.
        await redis.set(VOID_BEFORE_PREFIX + user, String(now), 'EX', opts.ttlS + 60);
      } catch (err) {
        throw storeUnavailable(err);
      }
    },
  };
}
