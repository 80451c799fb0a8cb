import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../src/session/stores/codec.js';

const cookie = { path: '/', httpOnly: true, secure: false, sameSite: 'lax' as const };
const codec = createCodec(cookie);
const restoredCookie = { ...cookie, originalMaxAge: null, expires: null };
const json = (v: unknown) => JSON.parse(JSON.stringify(v));

describe('session codec', () => {
  it('writes a logged-in session positionally, without the cookie, and reads it back whole', () => {
    const sess = { cookie: { ...restoredCookie }, user: 'user1', loginAt: 1795311600272, node: 'app-1', requests: 7, cart: [{ sku: 'a', qty: 2 }] } as any;
    const raw = codec.stringify(sess);
    expect(raw).toBe('[1,"user1",1795311600272,"app-1",7,[{"sku":"a","qty":2}]]');
    expect(codec.parse(raw)).toEqual({ ...sess, cookie: restoredCookie });
  });

  it('keeps any other session with a default cookie as a tagged object, so nothing is lost', () => {
    const sess = { cookie: { ...restoredCookie }, user: 'bob', loginAt: 5, node: 'n', requests: 0, cart: [], flash: 'hi' } as any;
    const raw = codec.stringify(sess);
    expect(JSON.parse(raw)).toEqual([2, { user: 'bob', loginAt: 5, node: 'n', requests: 0, cart: [], flash: 'hi' }]);
    expect(codec.parse(raw)).toEqual({ ...sess, cookie: restoredCookie });
  });

  it('never drops or fills in a field of its own shape: wrong types fall back to the object form', () => {
    const base = { cookie: { ...restoredCookie }, user: 'u', loginAt: 1, node: 'n', requests: 0, cart: [] };
    const odd = [
      { ...base, cart: 'not-a-list' },
      { ...base, cart: [{ sku: 'a' }] },
      { ...base, loginAt: null },
      { ...base, requests: '3' },
      { cookie: base.cookie, user: 'u', loginAt: 1 }, // node, requests and cart missing: not filled in
    ];
    for (const sess of odd) {
      const raw = codec.stringify(sess as any);
      expect(raw.startsWith('[2,'), raw).toBe(true);
      expect(codec.parse(raw), raw).toEqual(json(sess));
    }
  });

  it('keeps a cookie with an expiry or other options verbatim, and a session with no cookie as given', () => {
    const expires = new Date(Date.now() + 60_000).toISOString();
    for (const sess of [{ foo: 'bar' }, { cookie: { ...restoredCookie, expires, originalMaxAge: 60_000 }, user: 'u' }, { cookie: { ...restoredCookie, domain: 'example.com' } }]) {
      const raw = codec.stringify(sess as any);
      expect(raw.startsWith('{'), raw).toBe(true);
      expect(codec.parse(raw)).toEqual(json(sess));
    }
  });

  it('reads back exactly what it wrote, for any JSON session (property)', () => {
    const line = fc.record({ sku: fc.string({ maxLength: 8 }), qty: fc.integer() });
    const appShaped = fc.record(
      {
        user: fc.string(),
        loginAt: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer()),
        node: fc.string(),
        requests: fc.oneof(fc.integer(), fc.constant(null)),
        cart: fc.oneof(fc.array(line), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    const anything = fc.dictionary(
      fc.string({ maxLength: 10 }).filter((k) => k !== '__proto__'),
      fc.jsonValue(),
      { maxKeys: 6 },
    );
    const cookieArb = fc.oneof(
      fc.constant(undefined),
      fc.constant(restoredCookie),
      fc.date({ noInvalidDate: true }).map((d) => ({ ...restoredCookie, expires: d.toISOString() })),
    );
    fc.assert(
      fc.property(fc.oneof(appShaped, anything), cookieArb, (data, c) => {
        const sess = json(c === undefined ? data : { ...data, cookie: c });
        const back = codec.parse(codec.stringify(sess));
        // A session stored with the default cookie comes back with it; anything else exactly as JSON.
        expect(back).toEqual(sess);
      }),
      { numRuns: 500 },
    );
  });

  it('treats anything malformed as no session', () => {
    for (const raw of ['', '{', 'null', '42', '"s"', '[3,{}]', '[2,null]', '[2,[1]]', '[1,5,1,"n",0,[]]', '[1,"u","x","n",0,[]]', '[1,"u",1,"n",0,null]', '[1,"u",1,"n",0]']) {
      expect(codec.parse(raw), raw).toBeNull();
    }
  });
});
