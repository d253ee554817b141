import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { authorizeUrl, Browser, pkce } from '../support/browser.ts';
import { enterCredentials, startAuthorization } from '../support/flows.ts';

/**
 * Guards issue 12 points 5, 6 and 9 about the caller's address. With AKAMON_TRUST_PROXY=true,
 * X-Forwarded-For used to be believed from any peer, so any caller could pick a fresh throttle
 * bucket per request or charge a victim's; one address written another way (a port, brackets,
 * IPv4-mapped hex, letter case) was another bucket; and a 9000-character header became ctx.ip,
 * then a throttle key too long for its index: 500. Now the header is read only from a trusted
 * proxy (AKAMON_TRUSTED_PROXIES), every address has one text, and nothing else becomes ctx.ip.
 *
 * The test talks to Akamon from 127.0.0.1: one node trusts that as its proxy, the other trusts
 * another address only, so the same requests are from a proxy to one and from a stranger to the other.
 */
const CAP = 5;
let behindProxy: RunningAkamon;
let direct: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;
let legacy: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  behindProxy = await startAkamon({ env: { AKAMON_TRUSTED_PROXIES: '127.0.0.1', AKAMON_ANONYMOUS_PER_ADDRESS: String(CAP) } });
  // AKAMON_TRUST_PROXY=true as before, with the proxies now named: 127.0.0.1 is not one of them.
  direct = await startAkamon({ env: { AKAMON_TRUST_PROXY: 'true', AKAMON_TRUSTED_PROXIES: '192.0.2.1, 2001:db8::/32', AKAMON_ANONYMOUS_PER_ADDRESS: String(CAP) } });
  client = await behindProxy.createClient({ name: 'LMS' });
  legacy = await behindProxy.createClient({ name: 'Mail server', legacyPassword: true, redirectUris: ['http://127.0.0.1:9/mail'] });
});
afterAll(async () => {
  await direct.close();
  await behindProxy.close();
});

const from = (forwardedFor: string) => ({ 'x-forwarded-for': forwardedFor });
const logout = (node: RunningAkamon, forwardedFor: string) => fetch(`${node.url}/session/end`, { headers: { ...from(forwardedFor), accept: 'text/html', 'accept-language': 'en' } });
const bucket = async (node: RunningAkamon, source: string) => node.deps.database.db.selectFrom('throttle').select('key').where('key', '=', `bucket:anonymous:${source}`).executeTakeFirst();

/** The address the sign-in log records for a wrong password typed behind `forwardedFor`. */
async function loggedAddress(node: RunningAkamon, forwardedFor: string) {
  const rp = node === behindProxy ? client : await node.createClient();
  const account = await node.createReadyAccount();
  const browser = new Browser(node.url);
  browser.extraHeaders = from(forwardedFor);
  const { page } = await startAuthorization(browser, node, rp);
  const refused = await enterCredentials(browser, page, account.commonId, 'Wrong-password-1');
  expect(refused.status).toBe(401);
  const [event] = await node.deps.signinLog.list({ accountId: account.id, limit: 1 });
  expect(event).toMatchObject({ result: 'failure' });
  return event.ip;
}

describe('a caller that is not a trusted proxy', () => {
  test('cannot choose its address: X-Forwarded-For is ignored and the peer is logged', async () => {
    expect(await loggedAddress(direct, '203.0.113.77')).toBe('127.0.0.1');
  });

  test("cannot take a fresh budget per request, nor spend a victim's", async () => {
    // Each logout claims another address; the sign-in above already spent some of the peer's budget.
    const statuses = [];
    for (let i = 1; i <= 2 * CAP; i += 1) statuses.push((await logout(direct, `198.51.100.${i}`)).status);
    expect(statuses.filter((status) => status === 200).length).toBeLessThan(CAP);
    expect(statuses.slice(CAP - 1)).toEqual(Array(CAP + 1).fill(429));
    expect(await bucket(direct, '127.0.0.1')).toBeDefined();
    expect(await bucket(direct, '198.51.100.1')).toBeUndefined();
  });
});

describe('behind a trusted proxy', () => {
  test('the address the proxy appended is the client, in its one text; what the client wrote left of it is not', async () => {
    expect(await loggedAddress(behindProxy, '203.0.113.9')).toBe('203.0.113.9');
    expect(await loggedAddress(behindProxy, '192.0.2.66, ::FFFF:CB00:710A')).toBe('203.0.113.10');
    expect(await loggedAddress(behindProxy, '[2001:DB8:0:0::0001]:443')).toBe('2001:db8::1');
  });

  test('every spelling of one address is one budget', async () => {
    const spellings = ['198.51.100.20', '198.51.100.20:5678', '::ffff:198.51.100.20', '[::FFFF:C633:6414]:443', '0:0:0:0:0:ffff:c633:6414'];
    expect(spellings).toHaveLength(CAP);
    for (const spelling of spellings) expect((await logout(behindProxy, spelling)).status).toBe(200);
    expect((await logout(behindProxy, '::ffff:c633:6414')).status).toBe(429);
    expect((await logout(behindProxy, '198.51.100.21')).status).toBe(200);
    const keys = await behindProxy.deps.database.db.selectFrom('throttle').select('key').where('key', 'like', 'bucket:anonymous:%198.51.100.2%').execute();
    expect(keys.map((k) => k.key).sort()).toEqual(['bucket:anonymous:198.51.100.20', 'bucket:anonymous:198.51.100.21']);
  });
});

describe('an X-Forwarded-For of 9000 characters that is no address', () => {
  const long = 'x'.repeat(9000);
  const headers = from(long);
  // Each of these is counted against the proxy's own address: give it a full budget each time.
  beforeEach(async () => {
    for (const node of [behindProxy, direct]) await node.deps.database.db.deleteFrom('throttle').where('key', '=', 'bucket:anonymous:127.0.0.1').execute();
  });

  test('on /auth: the sign-in page, counted against the proxy that passed it on', async () => {
    const { challenge } = pkce();
    const url = authorizeUrl(behindProxy.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256' });
    const response = await fetch(url, { redirect: 'manual', headers });
    expect(response.status).toBe(200);
    expect(await bucket(behindProxy, '127.0.0.1')).toBeDefined();
  });

  test('on /token: the password grant counts the guess against the proxy and answers as usual', async () => {
    const account = await behindProxy.createReadyAccount();
    const token = (password: string, forwardedFor: string) =>
      fetch(`${behindProxy.url}/token`, {
        method: 'POST',
        headers: {
          ...from(forwardedFor),
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${legacy.clientId}:${legacy.clientSecret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'password', username: account.commonId, password, scope: 'openid' }),
      });
    const wrong = await token('Wrong-password-1', long);
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_grant' });
    expect((await token(account.password, `198.51.100.1, ${long}`)).status).toBe(200);
    const events = await behindProxy.deps.signinLog.list({ accountId: account.id, limit: 10 });
    expect(events.map((e) => [e.result, e.ip])).toEqual([
      ['success', '127.0.0.1'],
      ['failure', '127.0.0.1'],
    ]);
  });

  test('on a page form: the password step answers its page and logs the proxy', async () => {
    expect(await loggedAddress(behindProxy, long)).toBe('127.0.0.1');
    expect(await loggedAddress(behindProxy, `198.51.100.1,${'1.2.3.4,'.repeat(100)}${long.slice(800)}`)).toBe('127.0.0.1');
  });

  test('on the admin API and on a direct node: answered normally', async () => {
    const admin = await fetch(`${behindProxy.url}/admin/api/clients`, { headers: { ...headers, authorization: `Bearer ${behindProxy.operatorToken}` } });
    expect(admin.status).toBe(200);
    expect(await admin.json()).toMatchObject({ clients: expect.arrayContaining([expect.objectContaining({ clientId: client.clientId })]) });
    const page = await fetch(`${direct.url}/recover`, { headers: { ...headers, 'accept-language': 'en' } });
    expect(page.status).toBe(200);
  });

  test('the throttle keeps a key of any length within its index, as a hash under the same prefix', async () => {
    const key = `account:${'9'.repeat(9000)}`;
    const rule = { free: 1, baseSeconds: 60, maxSeconds: 60 };
    expect(await behindProxy.deps.throttle.countUse([{ key, rule }])).toEqual({ waitSeconds: 0, blocked: false });
    expect((await behindProxy.deps.throttle.countUse([{ key, rule }])).waitSeconds).toBeGreaterThan(0);
    const stored = await behindProxy.deps.database.db.selectFrom('throttle').select('key').where('key', 'like', 'account:sha256:%').execute();
    expect(stored).toHaveLength(1);
    await behindProxy.deps.throttle.clear(key);
    expect(await behindProxy.deps.database.db.selectFrom('throttle').select('key').where('key', 'like', 'account:sha256:%').execute()).toEqual([]);
  });

  test('nothing was logged as an error, and no stored key or address is longer than an address', async () => {
    const lines = [...behindProxy.logs, ...direct.logs]
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.filter((line) => Number(line.level) >= 50)).toEqual([]);
    expect(lines.filter((line) => line.msg === 'request' && String(line.ip).length > 39)).toEqual([]);
    for (const node of [behindProxy, direct]) {
      const db = node.deps.database.db;
      const keys = await db.selectFrom('throttle').select('key').execute();
      expect(keys.filter((k) => k.key.length > 80)).toEqual([]);
      const ips = await db.selectFrom('signin_event').select('ip').execute();
      expect(ips.filter((row) => (row.ip ?? '').length > 39)).toEqual([]);
    }
  });
});
