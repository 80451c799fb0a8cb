import { createHash, hkdfSync } from 'node:crypto';
import type { Request } from 'express';
import type { Redis } from 'ioredis';
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { storeUnavailable } from '../errors.js';
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
 * moment after which a user's earlier tokens are void. Checking both is one MGET per request.
 * The token carries the identity only: the request counter and the cart are server state this
 * mode does not keep (501 NOT_IN_MODE), and a token is not rewritten per request.
 */
export const JWT_ISSUER = 'session-cluster';
export const JWT_AUDIENCE = 'session-cluster-api';
export const DENY_PREFIX = 'jwt:deny:';
export const VOID_BEFORE_PREFIX = 'jwt:void-before:';

export interface JwtOptions {
  secrets: string[];
  ttlS: number;
  /** The aux connection (db N+1): the denylist and the per-user cut-off live beside the limiter. */
  redis: Redis;
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
  const redis = opts.redis;

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
      const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], issuer: JWT_ISSUER, audience: JWT_AUDIENCE, requiredClaims: ['sub', 'jti', 'iat', 'exp'] });
      if (typeof payload.loginAt !== 'number' || typeof payload.node !== 'string') return null;
      return { sid: payload.jti!, user: payload.sub!, loginAt: payload.loginAt, node: payload.node, exp: payload.exp! };
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
      let state: Array<string | null>;
      try {
        state = await redis.mget(DENY_PREFIX + claims.sid, VOID_BEFORE_PREFIX + claims.user);
      } catch (err) {
        throw storeUnavailable(err);
      }
      const [denied, voidBefore] = [state[0] ?? null, state[1] ?? null];
      if (denied !== null || (voidBefore !== null && claims.loginAt <= Number(voidBefore))) return null;
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
      const accessToken = await new SignJWT({ loginAt, node })
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
      try {
        // Tokens live at most ttlS: the cut-off can go after that.
        await redis.set(VOID_BEFORE_PREFIX + user, String(Date.now()), 'EX', opts.ttlS + 60);
      } catch (err) {
        throw storeUnavailable(err);
      }
    },
  };
}
