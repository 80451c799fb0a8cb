import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { formatDuration, parseDurationMs, parseDurationS } from '../../src/duration.js';

// The project's one duration format: node settings and every command-line option.
describe('durations', () => {
  it('reads plain seconds and units from largest to smallest', () => {
    expect(parseDurationS('90')).toBe(90);
    expect(parseDurationS('90s')).toBe(90);
    expect(parseDurationS('1m30s')).toBe(90);
    expect(parseDurationS('30m')).toBe(1800);
    expect(parseDurationS('8h')).toBe(28_800);
    expect(parseDurationS('1d')).toBe(86_400);
    expect(parseDurationS('1d12h')).toBe(129_600);
    expect(parseDurationMs('1500ms')).toBe(1500);
    expect(parseDurationS(' 2m ')).toBe(120);
  });

  it('refuses anything else, quoting it', () => {
    for (const bad of ['', 'm', '1.5s', '-1', '1s1m', '1m1m', '90 s', '1m30', '1w', 'soon']) {
      expect(() => parseDurationS(bad), bad).toThrow(`got ${JSON.stringify(bad)}`);
    }
  });

  it('formats back to the same format', () => {
    for (const s of [1, 59, 90, 3600, 3661, 86_400, 90_061]) expect(parseDurationS(formatDuration(s))).toBe(s);
    expect(formatDuration(90)).toBe('1m30s');
    expect(formatDuration(0)).toBe('0s');
  });

  it('the node accepts 1m30s as an idle timeout, and names the variable for a bad one', () => {
    const base = { SESSION_SECRETS: randomBytes(32).toString('hex') };
    expect(parseConfig({ ...base, SESSION_IDLE_TIMEOUT: '1m30s' }).session.idleTimeoutS).toBe(90);
    expect(() => parseConfig({ ...base, SESSION_IDLE_TIMEOUT: '1500ms' })).toThrow(/SESSION_IDLE_TIMEOUT must be a whole number of seconds; got "1500ms"/);
    expect(() => parseConfig({ ...base, SESSION_IDLE_TIMEOUT: '0s' })).toThrow(/SESSION_IDLE_TIMEOUT must be at least 1 second/);
    expect(() => parseConfig({ ...base, LOGIN_FAILURE_WINDOW: '15 minutes' })).toThrow(
      /^invalid configuration: LOGIN_FAILURE_WINDOW must be a duration like 90, 90s, 1m30s, 30m, 8h or 1d; got "15 minutes"$/,
    );
  });
});
