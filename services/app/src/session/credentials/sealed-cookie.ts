import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import type { Request } from 'express';
import { AppError } from '../../errors.js';
import { replaceCookie, type ClientCredential, type SessionFields } from './client-session.js';
import { refreshAfterS } from '../types.js';

/**
 * The whole session in the cookie, sealed: AES-256-GCM (node:crypto), one authenticated
 * encryption step, so a cookie that was changed, truncated or made with another key does not
 * open at all (nothing is decrypted without its tag verifying).
 *
 * Why node:crypto and not a library: mozilla's client-sessions (the source material) has not
 * been released since 2018 and uses AES-CBC + HMAC put together by hand; cookie-session only
 * signs (the contents are readable by the client); iron-session (iron-webcrypto) is maintained
 * and sound, but is asynchronous (WebCrypto) and derives keys with PBKDF2 on every seal and
 * unseal. An AEAD from Node's own OpenSSL, with one HKDF key per secret derived once, is the
 * smallest thing that gives encryption, integrity, rotation and no dependency to maintain.
 *
 * Format: `v1.<kid>.<base64url(iv ‖ ciphertext ‖ tag)>`. `kid` names the secret (a hash prefix,
 * never the secret): the first of SESSION_SECRETS seals, every one opens, so a rotation keeps
 * every session (the same runbook as the signed cookies, README). The cookie's name is bound as
 * associated data: a cookie cannot be replayed under another name.
 *
 * What it cannot do: the server keeps nothing, so logout clears the browser's copy but a copy
 * taken before (a stolen cookie) stays valid until it expires: idle timeout after its last write,
 * absolute timeout after the login. The tests and the README show it. Concurrent requests that
 * each change the session race in the browser: the last Set-Cookie wins (no merge is possible).
 */
/** What browsers keep of one cookie (name, value and attributes); RFC 6265 section 6.1's minimum. */
export const BROWSER_COOKIE_LIMIT_BYTES = 4096;

interface Sealed extends SessionFields {
  sid: string;
  /** Last written, epoch ms: the idle timeout counts from here. */
  seen: number;
}

export interface SealedCookieOptions {
  name: string;
  secrets: string[];
  secure: boolean;
  idleTimeoutS: number;
  /** The largest cookie this node sends (COOKIE_MAX_BYTES); at most BROWSER_COOKIE_LIMIT_BYTES. */
  maxBytes?: number;
}

const kidOf = (secret: string) => createHash('sha256').update(`kid:${secret}`).digest('base64url').slice(0, 8);
const keyOf = (secret: string) => Buffer.from(hkdfSync('sha256', secret, 'session-cluster sealed cookie', 'aes-256-gcm v1', 32));

export function sealedCookie(opts: SealedCookieOptions): ClientCredential & { seal(payload: Sealed): string; open(value: string): Sealed | null } {
  const keys = new Map(opts.secrets.map((s) => [kidOf(s), keyOf(s)]));
  const sealKid = kidOf(opts.secrets[0]!);
  const aad = Buffer.from(opts.name);
  const maxBytes = Math.min(opts.maxBytes ?? BROWSER_COOKIE_LIMIT_BYTES, BROWSER_COOKIE_LIMIT_BYTES);
  const refreshAfterMs = refreshAfterS(opts.idleTimeoutS) * 1000;
  const attributes = `; Path=/; HttpOnly; SameSite=Lax${opts.secure ? '; Secure' : ''}`;
  const pattern = new RegExp(`(?:^|;\\s*)${opts.name.replace(/[^A-Za-z0-9_-]/g, '\\$&')}=(v1\\.[A-Za-z0-9_-]{8}\\.[A-Za-z0-9_-]{40,6000})(?:;|$)`);

  function seal(payload: Sealed): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', keys.get(sealKid)!, iv);
    cipher.setAAD(aad);
    const body = Buffer.concat([iv, cipher.update(JSON.stringify(payload), 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `v1.${sealKid}.${body.toString('base64url')}`;
  }

  function open(value: string): Sealed | null {
    const [, kid, data] = value.split('.');
    const key = keys.get(kid ?? '');
    if (!key || !data) return null;
    const raw = Buffer.from(data, 'base64url');
    if (raw.length < 12 + 16 + 2) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAAD(aad);
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      const plain = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
      const parsed = JSON.parse(plain) as Sealed;
      return typeof parsed.sid === 'string' && typeof parsed.seen === 'number' ? parsed : null;
    } catch {
      return null; // a tag that does not verify: changed, truncated, or sealed with a key we do not hold
    }
  }

  const write = (res: Parameters<ClientCredential['save']>[1], sid: string, fields: SessionFields) => {
    const cookie = `${opts.name}=${seal({ ...fields, sid, seen: Date.now() })}${attributes}`;
    // Browsers drop a cookie over 4096 bytes (name, value and attributes) without a word: refuse
    // the change instead, and leave the client's current cookie as it is.
    if (Buffer.byteLength(cookie) > maxBytes)
      throw new AppError('SESSION_TOO_LARGE', `The session would no longer fit in its cookie (${maxBytes} bytes); the change was not made.`);
    replaceCookie(res, opts.name, cookie);
  };

  return {
    seal,
    open,
    async read(req: Request) {
      const m = pattern.exec(req.headers.cookie ?? '');
      const payload = m ? open(m[1]!) : null;
      if (!payload || Date.now() - payload.seen > opts.idleTimeoutS * 1000) return null;
      const { sid, seen, ...fields } = payload;
      return { sid, fields, issuedAt: seen };
    },
    async save(_req, res, sid, fields) {
      write(res, sid, fields);
    },
    // Nothing to delete on the server; the logout route clears the browser's cookie. A copy of it
    // stays valid: this mode cannot revoke (capabilities.revokesStolenCredential is false).
    async destroy() {},
    touch(_req, res, sid, fields, seen) {
      // The idle timeout counts from the last write: a session only read keeps its cookie fresh at
      // most once a minute or a tenth of the idle timeout (refreshAfterS; a Set-Cookie on every
      // read would cost bytes on every response).
      if (seen !== undefined && Date.now() - seen > refreshAfterMs) {
        try {
          write(res, sid, fields);
        } catch {
          /* it fitted when it was written; if the limit ever bites, the next real change reports it */
        }
      }
    },
  };
}
