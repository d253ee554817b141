import { describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import { loadConfig } from '../../src/config/config.ts';
import * as defaults from '../../src/config/defaults.ts';
import { ACCOUNT_RULE, ADDRESS_RULE } from '../../src/throttle/login-throttle.ts';

/**
 * The security numbers live in one module, each with its reason, and README "Security defaults"
 * lists every one with its value: a number added or changed without its documentation fails here.
 */
const SOURCE = fs.readFileSync(new URL('../../src/config/defaults.ts', import.meta.url), 'utf8').split('\n');
const README = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const NAMES = Object.keys(defaults).sort();

/** How README writes a value: a number as it is, a set of limits as `name value` pairs. */
const render = (value: unknown): string =>
  typeof value === 'number'
    ? String(value)
    : Object.entries(value as Record<string, number>)
        .map(([key, n]) => `${key} ${n}`)
        .join(', ');

/** The rows of README's table under "### Security defaults": name -> value column. */
function readmeRows(): Map<string, string> {
  const start = README.indexOf('\n### Security defaults\n');
  expect(start).toBeGreaterThan(0);
  const end = README.indexOf('\n#', start + 1);
  const rows = new Map<string, string>();
  for (const match of README.slice(start, end < 0 ? undefined : end).matchAll(/^\| `(\w+)` \| ([^|]+) \|/gm)) rows.set(match[1], match[2].trim());
  return rows;
}

describe('security defaults', () => {
  test('each default is a positive number or a frozen set of positive numbers', () => {
    expect(NAMES.length).toBeGreaterThan(30);
    for (const name of NAMES) {
      const value = (defaults as Record<string, unknown>)[name];
      const numbers = typeof value === 'number' ? [value] : Object.values(value as object);
      if (typeof value !== 'number') expect({ name, frozen: Object.isFrozen(value) }).toEqual({ name, frozen: true });
      expect({ name, numbers: numbers.filter((n) => typeof n !== 'number' || !Number.isFinite(n) || n <= 0) }).toEqual({ name, numbers: [] });
    }
  });

  test('each default says in a one-line comment what it bounds and why', () => {
    const undocumented = SOURCE.flatMap((line, i) => {
      const name = /^export const (\w+)/.exec(line)?.[1];
      return name && !/^\/\*\* \S.{20,} \*\/$/.test(SOURCE[i - 1] ?? '') ? [name] : [];
    });
    expect(undocumented).toEqual([]);
    expect(SOURCE.filter((line) => /^export /.test(line) && !/^export const \w+ = /.test(line))).toEqual([]);
  });

  test('README lists every default with its value, and nothing else', () => {
    const rows = readmeRows();
    const expected = new Map(NAMES.map((name) => [name, render((defaults as Record<string, unknown>)[name])]));
    const wrong = NAMES.filter((name) => rows.get(name) !== expected.get(name)).map((name) => `add or correct in README: | \`${name}\` | ${expected.get(name)} | ... |`);
    const extra = [...rows.keys()].filter((name) => !expected.has(name)).map((name) => `README lists ${name}, which src/config/defaults.ts does not export`);
    expect([...wrong, ...extra]).toEqual([]);
  });

  test('the configuration starts from them', () => {
    const config = loadConfig({});
    expect(config.ttl).toEqual({
      session: defaults.SESSION_TTL_SECONDS,
      sessionIdle: defaults.SESSION_IDLE_SECONDS,
      interaction: defaults.INTERACTION_TTL_SECONDS,
      accessToken: defaults.ACCESS_TOKEN_TTL_SECONDS,
      idToken: defaults.ID_TOKEN_TTL_SECONDS,
      refreshToken: defaults.REFRESH_TOKEN_TTL_SECONDS,
      authorizationCode: defaults.AUTHORIZATION_CODE_TTL_SECONDS,
    });
    expect(config.argon2).toEqual(defaults.ARGON2);
    expect(config.passwordExpiry).toEqual({ maxAgeDays: defaults.PASSWORD_MAX_AGE_DAYS, noticeDays: defaults.PASSWORD_NOTICE_DAYS });
    expect(config.hashQueueLimit).toBe(config.hashConcurrency * defaults.HASH_QUEUE_PER_THREAD);
    expect(config.captchaMaxNumber).toBe(defaults.CAPTCHA_MAX_NUMBER);
    expect(config.salvageDays).toBe(defaults.SALVAGE_DAYS);
    expect(config.keyRefreshSeconds).toBe(defaults.KEY_REFRESH_SECONDS);
    expect(config.tokenRetryGraceSeconds).toBe(defaults.TOKEN_RETRY_GRACE_SECONDS);
    expect(ACCOUNT_RULE).toBe(defaults.PASSWORD_THROTTLE_PER_ACCOUNT);
    expect(ADDRESS_RULE).toBe(defaults.PASSWORD_THROTTLE_PER_ADDRESS);
  });
});
