import { describe, expect, test } from '@jest/globals';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

const SECRET = 'x'.repeat(32);

/** Runs loadConfig and returns the ConfigError it throws (failing if it throws nothing or something else). */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig defaults', () => {
  const config = loadConfig({});

  test('port, issuer, listen host and profile', () => {
    expect(config.production).toBe(false);
    expect(config.port).toBe(3000);
    expect(config.issuer).toBe('http://localhost:3000');
    expect(config.listenHost).toBe('127.0.0.1');
    expect(config.passwordProfile).toBe('university');
    expect(config.secret).toBeUndefined();
    expect(config.databaseUrl).toBeUndefined();
    expect(config.realmSuffix).toBe('utac.u-tokyo.ac.jp');
    expect(config.dataDir).toBe(path.resolve('./data'));
  });

  test('argon2 parameters follow the OWASP minimum (19 MiB, 2 iterations, 1 lane)', () => {
    expect(config.argon2).toEqual({ memoryCost: 19456, timeCost: 2, parallelism: 1 });
  });

  test('flags are off, the hash queue is four times the concurrency', () => {
    expect(config.trustProxy).toBe(false);
    expect(config.backchannelAllowPrivate).toBe(false);
    expect(config.hashConcurrency).toBeGreaterThanOrEqual(1);
    expect(config.hashQueueLimit).toBe(config.hashConcurrency * 4);
    expect(loadConfig({ AKAMON_HASH_CONCURRENCY: '3' }).hashQueueLimit).toBe(12);
  });

  test('hashing runs at niceness 10 unless told otherwise, within 0 to 19', () => {
    expect(config.hashNiceness).toBe(10);
    expect(loadConfig({ AKAMON_HASH_NICE: '0' }).hashNiceness).toBe(0);
    expect(() => loadConfig({ AKAMON_HASH_NICE: '20' })).toThrow(ConfigError);
    expect(() => loadConfig({ AKAMON_HASH_NICE: '-5' })).toThrow(ConfigError);
  });

  test('the issuer follows PORT when not given, and loses a trailing slash', () => {
    expect(loadConfig({ PORT: '8080' }).issuer).toBe('http://localhost:8080');
    expect(loadConfig({ AKAMON_ISSUER: 'https://id.example.ac.jp/' }).issuer).toBe('https://id.example.ac.jp');
    expect(loadConfig({ AKAMON_ISSUER: 'https://id.example.ac.jp/oidc/' }).issuer).toBe('https://id.example.ac.jp/oidc');
  });

  test('the configuration is frozen', () => {
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.argon2)).toBe(true);
    expect(Object.isFrozen(config.ttl)).toBe(true);
  });

  test('values given are used', () => {
    const custom = loadConfig({
      PORT: '4000',
      AKAMON_ARGON2_MEMORY_KIB: '65536',
      AKAMON_ARGON2_ITERATIONS: '3',
      AKAMON_ARGON2_PARALLELISM: '2',
      AKAMON_HASH_CONCURRENCY: '2',
      AKAMON_HASH_QUEUE: '0',
      AKAMON_PASSWORD_PROFILE: 'nist',
      AKAMON_TRUST_PROXY: 'yes',
      AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'TRUE',
      AKAMON_SECRET: SECRET,
    });
    expect(custom.port).toBe(4000);
    expect(custom.argon2).toEqual({ memoryCost: 65536, timeCost: 3, parallelism: 2 });
    expect(custom.hashConcurrency).toBe(2);
    expect(custom.hashQueueLimit).toBe(0);
    expect(custom.passwordProfile).toBe('nist');
    expect(custom.trustProxy).toBe(true);
    expect(custom.backchannelAllowPrivate).toBe(true);
    expect(custom.secret).toBe(SECRET);
  });
});

describe('loadConfig refuses bad values, naming the variable', () => {
  test.each([
    ['PORT', 'abc'],
    ['PORT', '-1'],
    ['PORT', '3000.5'],
    ['PORT', '1e3'],
    ['PORT', ' 3000'],
    ['PORT', '0x10'],
    ['PORT', '65536'],
    ['AKAMON_ARGON2_MEMORY_KIB', '19MiB'],
    ['AKAMON_ARGON2_MEMORY_KIB', '512'],
    ['AKAMON_ARGON2_ITERATIONS', '0'],
    ['AKAMON_ARGON2_PARALLELISM', 'two'],
    ['AKAMON_HASH_CONCURRENCY', '0'],
    ['AKAMON_HASH_QUEUE', '-5'],
    ['AKAMON_SESSION_TTL_SECONDS', '0'],
    ['AKAMON_SESSION_IDLE_SECONDS', '0'],
    ['AKAMON_SESSION_IDLE_SECONDS', '2h'],
    ['AKAMON_ACCESS_TOKEN_TTL_SECONDS', 'forever'],
    ['AKAMON_KEY_REFRESH_SECONDS', '3601'],
    ['AKAMON_TOKEN_RETRY_GRACE_SECONDS', '61'],
    ['AKAMON_TOKEN_RETRY_GRACE_SECONDS', '30s'],
  ])('%s=%j', (name, value) => {
    const error = configError({ [name]: value });
    expect(error.message).toContain(name);
    expect(error.name).toBe('ConfigError');
  });

  test.each([
    ['AKAMON_TRUST_PROXY', 'maybe'],
    ['AKAMON_TRUST_PROXY', '2'],
    ['AKAMON_BACKCHANNEL_ALLOW_PRIVATE', 'enabled'],
    ['AKAMON_BACKCHANNEL_ALLOW_PRIVATE', 'y'],
  ])('boolean %s=%j', (name, value) => {
    const error = configError({ [name]: value });
    expect(error.message).toContain(name);
    expect(error.message).toContain(value);
  });

  test.each([
    ['1', true],
    ['true', true],
    ['YES', true],
    ['on', true],
    ['0', false],
    ['false', false],
    ['No', false],
    ['off', false],
    ['', false],
  ])('boolean value %j reads as %s', (value, expected) => {
    expect(loadConfig({ AKAMON_TRUST_PROXY: value }).trustProxy).toBe(expected);
  });

  test('an empty number falls back to the default', () => {
    expect(loadConfig({ PORT: '' }).port).toBe(3000);
  });

  test('other refusals', () => {
    expect(configError({ AKAMON_PASSWORD_PROFILE: 'strict' }).message).toContain('AKAMON_PASSWORD_PROFILE');
    expect(configError({ AKAMON_SECRET: 'short' }).message).toContain('AKAMON_SECRET');
    expect(configError({ AKAMON_ISSUER: 'not a url' }).message).toContain('AKAMON_ISSUER');
    expect(configError({ AKAMON_ISSUER: 'https://id.example/?a=1' }).message).toContain('AKAMON_ISSUER');
    expect(configError({ AKAMON_ISSUER: 'ftp://id.example' }).message).toContain('AKAMON_ISSUER');
  });

  test('production needs an https issuer, a secret and a trusted proxy', () => {
    const good = { AKAMON_ENV: 'production', AKAMON_ISSUER: 'https://id.example.ac.jp', AKAMON_SECRET: SECRET, AKAMON_TRUST_PROXY: 'true' };
    const config = loadConfig(good);
    expect(config.production).toBe(true);
    expect(config.listenHost).toBe('0.0.0.0');
    expect(configError({ ...good, AKAMON_ISSUER: '' }).message).toContain('AKAMON_ISSUER');
    expect(configError({ ...good, AKAMON_SECRET: '' }).message).toContain('AKAMON_SECRET');
    expect(configError({ ...good, AKAMON_TRUST_PROXY: 'false' }).message).toContain('AKAMON_TRUST_PROXY');
    expect(configError({ ...good, AKAMON_ISSUER: 'http://id.example.ac.jp' }).message).toContain('https');
  });

  // Found by a security review: an empty AKAMON_ENV beside NODE_ENV=production, or a mistyped one,
  // was read as development (http issuer, codes mailed to the log, cookies without Secure).
  test('an empty AKAMON_ENV is unset (NODE_ENV decides); a value other than production or development is refused', () => {
    const good = { AKAMON_ISSUER: 'https://id.example.ac.jp', AKAMON_SECRET: SECRET, AKAMON_TRUST_PROXY: 'true' };
    expect(loadConfig({ ...good, AKAMON_ENV: '', NODE_ENV: 'production' }).production).toBe(true);
    expect(configError({ ...good, AKAMON_ENV: '', NODE_ENV: 'production', AKAMON_ISSUER: 'http://id.example.ac.jp' }).message).toContain('https');
    for (const value of ['prod', 'Production', 'production ', 'staging']) expect(configError({ ...good, AKAMON_ENV: value }).message).toContain('AKAMON_ENV must be production or development');
    expect(loadConfig({ ...good, AKAMON_ENV: 'development', NODE_ENV: 'production' }).production).toBe(false);
    expect(loadConfig({ ...good, NODE_ENV: 'test' }).production).toBe(false);
  });
});

describe('realm suffix', () => {
  test('is normalised: no leading @, lower case, trimmed', () => {
    expect(loadConfig({ AKAMON_REALM_SUFFIX: '@Utac.Example.ac.jp' }).realmSuffix).toBe('utac.example.ac.jp');
    expect(loadConfig({ AKAMON_REALM_SUFFIX: 'utac.example.ac.jp' }).realmSuffix).toBe('utac.example.ac.jp');
    expect(loadConfig({ AKAMON_REALM_SUFFIX: 'UTAC.EXAMPLE.AC.JP  ' }).realmSuffix).toBe('utac.example.ac.jp');
  });

  test('unset or empty is the documented default; "none" means none', () => {
    expect(loadConfig({}).realmSuffix).toBe('utac.u-tokyo.ac.jp');
    expect(loadConfig({ AKAMON_REALM_SUFFIX: '' }).realmSuffix).toBe('utac.u-tokyo.ac.jp');
    expect(loadConfig({ AKAMON_REALM_SUFFIX: '@' }).realmSuffix).toBe('utac.u-tokyo.ac.jp');
    expect(loadConfig({ AKAMON_REALM_SUFFIX: 'none' }).realmSuffix).toBeUndefined();
    expect(loadConfig({ AKAMON_REALM_SUFFIX: ' NONE ' }).realmSuffix).toBeUndefined();
  });

  test.each(['utac example', 'utac.example.ac.jp/x', 'a@b.example', '@@utac.example.ac.jp', 'ユタック.jp', 'utac.example.ac.jp;drop', 'utac_example.ac.jp'])(
    'invalid realm %j throws ConfigError naming the variable',
    (realm) => {
      expect(configError({ AKAMON_REALM_SUFFIX: realm }).message).toContain('AKAMON_REALM_SUFFIX');
    },
  );
});

describe('identity verification settings', () => {
  const production = { AKAMON_ENV: 'production', AKAMON_ISSUER: 'https://login.example.ac.jp', AKAMON_SECRET: SECRET, AKAMON_TRUST_PROXY: 'true' };
  const upstream = { AKAMON_IDV_ISSUER: 'https://idv.example.go.jp', AKAMON_IDV_CLIENT_ID: 'akamon' };

  test('development runs the stand-in provider on the next port unless told otherwise or a real one is set', () => {
    expect(loadConfig({ PORT: '3000' }).devIdvPort).toBe(3001);
    expect(loadConfig({ PORT: '3000', AKAMON_DEV_IDV_PORT: '4100' }).devIdvPort).toBe(4100);
    expect(loadConfig({ AKAMON_DEV_IDV: 'false' }).devIdvPort).toBeUndefined();
    expect(loadConfig({ ...upstream, AKAMON_IDV_CLIENT_SECRET: 's' }).devIdvPort).toBeUndefined();
  });

  test('production never runs the stand-in provider, and refuses to be told to', () => {
    expect(loadConfig(production).devIdvPort).toBeUndefined();
    expect(loadConfig(production).idv).toBeUndefined();
    expect(configError({ ...production, AKAMON_DEV_IDV: 'true' }).message).toMatch(/development only/);
  });

  test('an upstream provider needs a client id and exactly one way to authenticate', () => {
    expect(loadConfig({ ...production, ...upstream, AKAMON_IDV_CLIENT_SECRET: 's' }).idv).toMatchObject({
      issuer: 'https://idv.example.go.jp',
      auth: { kind: 'secret' },
      scopes: 'openid profile',
      nameClaim: 'name',
    });
    const key = loadConfig({ ...upstream, AKAMON_IDV_PRIVATE_KEY_FILE: '/keys/rp.pem' }, () => '-----BEGIN PRIVATE KEY-----').idv;
    expect(key?.auth).toEqual({ kind: 'private_key_jwt', privateKey: '-----BEGIN PRIVATE KEY-----' });
    expect(configError({ AKAMON_IDV_ISSUER: 'https://idv.example.go.jp', AKAMON_IDV_CLIENT_SECRET: 's' }).message).toMatch(/AKAMON_IDV_CLIENT_ID/);
    expect(configError(upstream).message).toMatch(/exactly one/);
    expect(configError({ ...upstream, AKAMON_IDV_CLIENT_SECRET: 's', AKAMON_IDV_PRIVATE_KEY_FILE: '/k' }).message).toMatch(/exactly one/);
    expect(configError({ ...upstream, AKAMON_IDV_PRIVATE_KEY_FILE: '/nonexistent/key.pem' }).message).toMatch(/cannot be read/);
    expect(configError({ ...production, ...upstream, AKAMON_IDV_ISSUER: 'http://idv.example.go.jp', AKAMON_IDV_CLIENT_SECRET: 's' }).message).toMatch(/https/);
    expect(configError({ ...upstream, AKAMON_IDV_CLIENT_SECRET: 's', AKAMON_IDV_SCOPES: 'profile' }).message).toMatch(/openid/);
    expect(configError({ AKAMON_SALVAGE_DAYS: '-1' }).message).toMatch(/AKAMON_SALVAGE_DAYS/);
  });
});

test('proxies count as named only when AKAMON_TRUSTED_PROXIES lists one (a list of nothing falls back to the local networks, unnamed)', () => {
  expect(loadConfig({ AKAMON_TRUST_PROXY: 'true', AKAMON_TRUSTED_PROXIES: ' , ' }).proxiesNamed).toBe(false);
  expect(loadConfig({ AKAMON_TRUSTED_PROXIES: '192.0.2.1' }).proxiesNamed).toBe(true);
});
