import { describe, expect, it } from 'vitest';
import { createCodec } from '../src/session/codec.js';

const cookie = { path: '/', httpOnly: true, secure: false, sameSite: 'lax' as const };
const codec = createCodec(cookie);
const restoredCookie = { ...cookie, originalMaxAge: null, expires: null };

describe('session codec', () => {
  it('writes a logged-in session positionally, without the cookie, and reads it back whole', () => {
    const sess = { cookie: { ...restoredCookie }, user: 'user1', loginAt: 1795311600272, node: 'app-1', requests: 7, cart: [{ sku: 'a', qty: 2 }] } as any;
    const raw = codec.stringify(sess);
    expect(raw).toBe('[1,"user1",1795311600272,"app-1",7,[{"sku":"a","qty":2}]]');
    expect(codec.parse(raw)).toEqual({ ...sess, cookie: restoredCookie });
  });

  it('falls back to a JSON object when the session holds anything else, so nothing is lost', () => {
    const sess = { cookie: { ...restoredCookie }, user: 'bob', loginAt: 5, node: 'n', requests: 0, cart: [], flash: 'hi' } as any;
    const raw = codec.stringify(sess);
    expect(JSON.parse(raw)).toEqual({ user: 'bob', loginAt: 5, node: 'n', requests: 0, cart: [], flash: 'hi' });
    expect(codec.parse(raw)).toEqual({ ...sess, cookie: restoredCookie });
  });

  it('treats anything malformed as no session', () => {
    for (const raw of ['', '{', 'null', '42', '"s"', '[2,"u",1,"n",0,[]]', '[1,5,1,"n",0,[]]', '[1,"u","x","n",0,[]]', '[1,"u",1,"n",0,null]']) {
      expect(codec.parse(raw), raw).toBeUndefined();
    }
  });
});
