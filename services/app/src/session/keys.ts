import { createHash, randomBytes } from 'node:crypto';

/**
 * Where shared mode's keys live, in one of two layouts.
 *
 * `databases` (one Redis, or Sentinel): what the project has always used. Sessions alone in the
 * URL's database (so DBSIZE counts them), the per-user index, its janitor schedule and the login
 * limiter in the next one; the Lua scripts SELECT between the two.
 *
 * `slots` (Redis Cluster): one database, and a script or multi-key command may only touch keys of
 * one hash slot (CROSSSLOT otherwise). Every key that a script touches together therefore carries
 * the same hash tag, `{T}`, where T is a *user shard*: two hex digits of SHA-256 of the lowercased
 * username (256 shards; the tag says nothing about the name, and 256 slots spread evenly over any
 * number of primaries a deployment will run). What shares a shard's slot:
 * - the user's sessions: a session id created at login is `{T}` + 24 random bytes (express-session
 *   `genid`, with the user known: the login regenerates the id, see routes/auth.ts), so the session
 *   key `s:{T}…` sits beside the index `idx:{T}<user>`; the index scripts (add with its eviction,
 *   log out everywhere, the janitor) stay single-slot although they compute session keys in Lua
 *   from members (those keys are not in KEYS, which Redis tolerates within the script's own slot);
 * - the janitor's schedule, sharded: `idx-due:{T}`, and the janitor sweeps all 256 shards;
 * - the limiter budgets that are the user's (username+client, account, trusted device):
 *   `rl:{T}uc:…`, `rl:{T}u:…`, `rl:{T}d:…`, so a successful login clears them in the index script.
 * The one budget that is not a user's, failures per client address, is tagged by the address
 * (`rl:{c:<address>}`) and reserved by a second script: login-limiter.ts says in which order and
 * how the first reservation is handed back when the second refuses.
 * Anonymous sessions are never stored, so their ids never need a tag; an unknown id is never
 * adopted, so a client cannot choose its shard's slot for a session it did not log in to.
 */
export type KeyLayout = 'databases' | 'slots';

export const SHARDS = 256;

/** The account a username names in keys: case-folded, at most 64 characters (a key's size is bounded). */
export const accountName = (username: string): string => username.toLowerCase().slice(0, 64);

/** The user's shard tag, `{xx}` (slots), or '' (databases: no tags). */
export function userTag(layout: KeyLayout, username: string): string {
  if (layout === 'databases') return '';
  return `{${createHash('sha256').update(accountName(username)).digest('hex').slice(0, 2)}}`;
}

/** Every shard tag the janitor must visit: [''] (databases) or the 256 `{xx}`. */
export function allTags(layout: KeyLayout): string[] {
  if (layout === 'databases') return [''];
  return Array.from({ length: SHARDS }, (_, i) => `{${i.toString(16).padStart(2, '0')}}`);
}

/** A session id for a login of `username`: express-session's own format (24 random bytes, base64url), prefixed with the user's tag. */
export function sessionIdFor(layout: KeyLayout, username: string): string {
  return userTag(layout, username) + randomBytes(24).toString('base64url');
}

/** The tag of a key (`{xx}` or ''), as Redis Cluster reads it: the first `{…}` with something inside. */
export function tagOf(key: string): string {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open, close + 1) : '';
}
