import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.js';
import { runNodeProcess, SECRET_A, SECRET_B } from '../../../../testkit/node.js';

const base = { SESSION_SECRETS: SECRET_A };
const fails = (env: Record<string, string>) => {
  try {
    parseConfig({ ...base, ...env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
};

describe('parseConfig', () => {
  it('has working defaults', () => {
    const c = parseConfig(base);
    expect(c).toMatchObject({ mode: 'shared', port: 3000, cookie: { name: 'sid', secure: false }, session: { idleTimeoutS: 1800, absoluteTimeoutS: 28800 } });
    expect(c.nodeId.length).toBeGreaterThan(0);
  });

  it('names the variable at fault', () => {
    expect(fails({ SESSION_MODE: 'round-robin' })).toMatch(/^invalid configuration: SESSION_MODE must be one of shared, sticky, database, cookie, jwt; got "round-robin"$/);
    expect(fails({ PORT: 'eighty' })).toMatch(/^invalid configuration: PORT /);
    expect(fails({ REDIS_URL: 'localhost:6379' })).toMatch(/^invalid configuration: REDIS_URL /);
    expect(fails({ SESSION_IDLE_TIMEOUT: '10 minutes' })).toMatch(/^invalid configuration: SESSION_IDLE_TIMEOUT /);
    expect(fails({ SESSION_IDLE_TIMEOUT: '2h', SESSION_ABSOLUTE_TIMEOUT: '1h' })).toMatch(/SESSION_ABSOLUTE_TIMEOUT must not be shorter/);
    expect(fails({ TRUST_PROXY: 'true' })).toMatch(/^invalid configuration: TRUST_PROXY /);
  });

  it('REDIS_CLUSTER_NODES: a host:port list, not with Sentinels, not with WAIT', () => {
    expect(parseConfig({ ...base, REDIS_CLUSTER_NODES: '127.0.0.1:7001,redis-2:7002' }).redis.cluster).toEqual({
      nodes: [
        { host: '127.0.0.1', port: 7001 },
        { host: 'redis-2', port: 7002 },
      ],
    });
    expect(parseConfig(base).redis.cluster).toBeUndefined();
    expect(fails({ REDIS_CLUSTER_NODES: 'redis://127.0.0.1:7001' })).toMatch(/^invalid configuration: REDIS_CLUSTER_NODES /);
    expect(fails({ REDIS_CLUSTER_NODES: '127.0.0.1:7001', REDIS_SENTINELS: '127.0.0.1:26379' })).toMatch(/REDIS_CLUSTER_NODES cannot be combined with REDIS_SENTINELS/);
    expect(fails({ REDIS_CLUSTER_NODES: '127.0.0.1:7001', REDIS_WAIT_REPLICAS: '1', REDIS_COMMAND_TIMEOUT_MS: '500' })).toMatch(
      /REDIS_WAIT_REPLICAS is not supported with REDIS_CLUSTER_NODES/,
    );
  });

  it('parses booleans strictly: "false" is false, "maybe" is an error', () => {
    expect(parseConfig({ ...base, COOKIE_SECURE: 'false' }).cookie.secure).toBe(false);
    expect(parseConfig({ ...base, COOKIE_SECURE: 'true' }).cookie).toEqual({ secure: true, name: '__Host-sid', maxBytes: 4096 });
    expect(fails({ COOKIE_SECURE: 'maybe' })).toMatch(/^invalid configuration: COOKIE_SECURE /);
    // "false" means false (z.coerce.boolean would make it true), and the default is on.
    expect(parseConfig(base).redis.autoPipelining).toBe(true);
    expect(parseConfig({ ...base, REDIS_AUTO_PIPELINING: 'false' }).redis.autoPipelining).toBe(false);
    expect(fails({ REDIS_AUTO_PIPELINING: 'sometimes' })).toBe('invalid configuration: REDIS_AUTO_PIPELINING must be one of true/false/1/0/yes/no/on/off; got "sometimes"');
  });

  it('splits secrets (first signs), refuses short ones outside development, and never prints them', () => {
    expect(parseConfig({ SESSION_SECRETS: `${SECRET_A}, ${SECRET_B}` }).secrets).toEqual([SECRET_A, SECRET_B]);
    const msg = fails({ SESSION_SECRETS: 'short-secret' });
    expect(msg).toMatch(/^invalid configuration: SESSION_SECRETS .*at least 32/);
    expect(msg).not.toContain('short-secret');
    expect(parseConfig({ SESSION_SECRETS: 'short-secret', NODE_ENV: 'development' }).secrets).toEqual(['short-secret']);
    expect(fails({ SESSION_SECRETS: '' })).toMatch(/SESSION_SECRETS .*missing/);
  });

  it('refuses obviously guessable secrets outside development, naming the variable and hiding the value', () => {
    for (const weak of ['n'.repeat(40), 'ab'.repeat(20), 'password'.repeat(5), '0123456789'.repeat(4), `${SECRET_A},${'x'.repeat(64)}`]) {
      const msg = fails({ SESSION_SECRETS: weak });
      expect(msg, weak).toMatch(/^invalid configuration: SESSION_SECRETS has a secret that looks guessable/);
      expect(msg).not.toContain(weak.slice(0, 12));
    }
    // Real random secrets pass: hex (openssl rand -hex 32) and base64 (openssl rand -base64 32).
    expect(parseConfig({ SESSION_SECRETS: 'kR3x9Qp2Lw8Zt5Vb7Nc1Md4Fg6Hj0Ks2Yu8Ie3Ao5Pq=' }).secrets).toHaveLength(1);
    expect(parseConfig({ SESSION_SECRETS: 'aaaaaaaa', NODE_ENV: 'development' }).secrets).toEqual(['aaaaaaaa']);
  });

  it('SHUTDOWN_DELAY: 0 by default, a duration, shorter than SHUTDOWN_TIMEOUT (the deadline covers both)', () => {
    expect(parseConfig(base)).toMatchObject({ shutdownDelayS: 0, shutdownTimeoutS: 10 });
    expect(parseConfig({ ...base, SHUTDOWN_DELAY: '7s', SHUTDOWN_TIMEOUT: '20s' })).toMatchObject({ shutdownDelayS: 7, shutdownTimeoutS: 20 });
    expect(fails({ SHUTDOWN_DELAY: 'soon' })).toMatch(/^invalid configuration: SHUTDOWN_DELAY must be a duration/);
    expect(fails({ SHUTDOWN_DELAY: '1500ms' })).toMatch(/^invalid configuration: SHUTDOWN_DELAY must be a whole number of seconds/);
    expect(fails({ SHUTDOWN_DELAY: '10s' })).toMatch(/^invalid configuration: SHUTDOWN_DELAY must be shorter than SHUTDOWN_TIMEOUT \(10 s\).*; got "10s"$/);
    expect(fails({ SHUTDOWN_DELAY: '30s', SHUTDOWN_TIMEOUT: '20s' })).toMatch(/SHUTDOWN_DELAY must be shorter than SHUTDOWN_TIMEOUT \(20 s\)/);
    expect(fails({ SHUTDOWN_TIMEOUT: '0' })).toMatch(/^invalid configuration: SHUTDOWN_TIMEOUT must be at least 1 second/);
  });

  it('reads durations with units', () => {
    const c = parseConfig({ ...base, SESSION_IDLE_TIMEOUT: '15m', SESSION_ABSOLUTE_TIMEOUT: '1d' });
    expect(c.session).toMatchObject({ idleTimeoutS: 900, absoluteTimeoutS: 86400 });
  });

  it('TRUST_PROXY: false, hop counts and address lists', () => {
    expect(parseConfig({ ...base, TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(parseConfig({ ...base, TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(parseConfig({ ...base, TRUST_PROXY: 'loopback, 10.0.0.0/8' }).trustProxy).toEqual(['loopback', '10.0.0.0/8']);
  });
});

describe('the process', () => {
  it('exits 1 with a one-line message naming SESSION_MODE when it is bad', async () => {
    const r = await runNodeProcess({ SESSION_SECRETS: SECRET_A, SESSION_MODE: 'bogus' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/SESSION_MODE must be one of shared, sticky, database, cookie, jwt; got "bogus"/);
  });

  it('exits 1 naming SESSION_SECRETS when it is missing', async () => {
    const r = await runNodeProcess({});
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^invalid configuration: SESSION_SECRETS/);
  });
});
