import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { backchannelReceiver } from '../support/backchannel.ts';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { authorizeUrl, Browser } from '../support/browser.ts';
import { codeFrom, enterCredentials, redeem, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  client = await akamon.createClient({ name: 'Mail' });
});
afterAll(() => akamon.close());

const noServerError = (status: number) => expect(status).toBeLessThan(500);

describe('bad input at the authorization endpoint', () => {
  test('unknown client, wrong or tricky redirect URIs: an error page, no redirect', async () => {
    const browser = new Browser(akamon.url);
    const cases: Array<Record<string, string>> = [
      { client_id: 'no-such-client', redirect_uri: client.redirectUri },
      { client_id: client.clientId, redirect_uri: 'https://evil.example/cb' },
      { client_id: client.clientId, redirect_uri: `${client.redirectUri}/` },
      { client_id: client.clientId, redirect_uri: `${client.redirectUri}?x=1` },
      { client_id: client.clientId, redirect_uri: client.redirectUri.replace('127.0.0.1', '127.0.0.1.evil.example') },
      { client_id: client.clientId, redirect_uri: 'javascript:alert(1)' },
      { client_id: client.clientId },
    ];
    for (const params of cases) {
      const response = await browser.request(authorizeUrl(akamon.url, { code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', ...params }));
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      const html = await response.text();
      expect(html).toContain('Something went wrong');
      expect(html).not.toMatch(/at \w+ \(|node_modules|stack/i);
    }
  });

  test('unsupported response types, prompt values and max_age are refused with an OAuth error and no code', async () => {
    const browser = new Browser(akamon.url);
    for (const params of [{ response_type: 'token' }, { response_type: 'code id_token' }, { prompt: 'none login' }, { prompt: 'foo' }, { max_age: 'abc' }, { max_age: '-1' }] as Array<
      Record<string, string>
    >) {
      const { page } = await startAuthorization(browser, akamon, client, params);
      if (page.status === 400) {
        expect(page.html).toContain('Something went wrong');
      } else {
        // Token response types answer in the fragment.
        const url = new URL(page.url);
        const answer = new URLSearchParams(url.hash.slice(1) || url.search);
        expect(['unsupported_response_type', 'invalid_request']).toContain(answer.get('error'));
        expect(answer.get('code')).toBeNull();
      }
    }
  });

  test('a 64 KB query string and a hostile login_hint do no harm', async () => {
    const browser = new Browser(akamon.url);
    const huge = await browser.request(`${akamon.url}/auth?client_id=${client.clientId}&x=${'a'.repeat(65536)}`);
    noServerError(huge.status);
    const { page } = await startAuthorization(browser, akamon, client, { login_hint: '<script>alert(1)</script>' });
    expect(page.status).toBe(200);
    expect(page.html).not.toContain('<script>alert(1)</script>');
  });
});

describe('bad input at the sign-in forms', () => {
  test('missing or forged CSRF token: 403 and no sign-in', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const { page } = await startAuthorization(browser, akamon, client);
    const missing = await browser.submit(page, /\/identifier$/, { identifier: account.commonId }, { csrf: null });
    expect(missing.status).toBe(403);
    const forged = await browser.submit(page, /\/identifier$/, { identifier: account.commonId }, { csrf: 'forged' });
    expect(forged.status).toBe(403);
    expect(forged.html).toContain('Go back to the page with the form, reload it');
  });

  test('repeated fields, JSON bodies, oversized bodies and unknown actions', async () => {
    const browser = new Browser(akamon.url);
    const { page } = await startAuthorization(browser, akamon, client);
    const action = /action="([^"]+\/identifier)"/.exec(page.html)![1];
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.html)![1];
    const post = (path: string, body: string, type = 'application/x-www-form-urlencoded') => browser.request(`${akamon.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
    expect((await post(action, `_csrf=${csrf}&identifier=1&identifier=2`)).status).toBe(400);
    expect((await post(action, JSON.stringify({ identifier: '0123456789' }), 'application/json')).status).toBe(415);
    expect((await post(action, `_csrf=${csrf}&identifier=${'1'.repeat(20000)}`)).status).toBe(413);
    expect((await post(action, `_csrf=${csrf}&identifier=%E0%A4%A`)).status).toBe(400);
    expect((await post(action.replace('/identifier', '/change'), `_csrf=${csrf}`)).status).toBe(400);
    expect((await post(action.replace(/interaction\/[^/]+/, 'interaction/not-a-real-uid'), `_csrf=${csrf}&identifier=0123456789`)).status).toBe(400);
  });

  test('NUL bytes, control characters and a 10 KB password fail cleanly', async () => {
    const account = await akamon.createReadyAccount();
    for (const [identifier, password] of [
      [`${account.commonId}\u0000`, 'x'],
      [account.commonId, 'a\u0000b\r\nc'],
      [account.commonId, 'p'.repeat(10000)],
      [account.commonId, ''],
    ]) {
      const browser = new Browser(akamon.url);
      const { page } = await startAuthorization(browser, akamon, client);
      const next = await browser.submit(page, /\/identifier$/, { identifier });
      if (next.status === 400) continue; // refused as an identifier
      const result = await browser.submit(next, /\/password$/, { password });
      expect([401, 413]).toContain(result.status);
    }
  });

  test('an expired or unknown interaction shows the start-again page', async () => {
    const browser = new Browser(akamon.url);
    const page = await browser.visit(`${akamon.url}/interaction/unknown-interaction-id`);
    expect(page.status).toBe(400);
    expect(page.html).toContain('has expired or was already used');
  });

  test('a finished interaction cannot be replayed', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const { page } = await startAuthorization(browser, akamon, client);
    const passwordPage = await browser.submit(page, /\/identifier$/, { identifier: account.commonId });
    const done = await browser.submit(passwordPage, /\/password$/, { password: account.password });
    expect(codeFrom(done)).toBeTruthy();
    const replay = await browser.submit(passwordPage, /\/password$/, { password: account.password });
    expect(replay.status).toBe(400);
  });
});

describe('bad input at the token endpoint', () => {
  test('wrong secret, JSON body, unsupported grants and a 2 MB body give RFC 6749 JSON errors', async () => {
    const wrong = await tokenRequest(
      akamon,
      { clientId: client.clientId, clientSecret: 'wrong' },
      { grant_type: 'authorization_code', code: 'x', redirect_uri: client.redirectUri, code_verifier: 'x'.repeat(43) },
    );
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
    for (const grant of ['password', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code', 'nonsense']) {
      const r = await tokenRequest(akamon, client, { grant_type: grant });
      expect(r.status).toBe(400);
      expect(['unsupported_grant_type', 'unauthorized_client', 'invalid_request']).toContain(r.body.error);
    }
    const json = await fetch(`${akamon.url}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":"authorization_code"}' });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { error: string }).error).toBe('invalid_request');
    const big = await fetch(`${akamon.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=x&pad=${'a'.repeat(2 * 1024 * 1024)}` });
    noServerError(big.status);
  });

  test("another client cannot redeem a client's code", async () => {
    const other = await akamon.createClient({ name: 'Other', redirectUris: ['http://127.0.0.1:9/other'] });
    const account = await akamon.createReadyAccount();
    const result = await signIn(new Browser(akamon.url), akamon, client, account);
    const stolen = await redeem(akamon, other, result.code!, result.verifier);
    expect(stolen.body.error).toBe('invalid_grant');
  });
});

describe('bad input at the admin API', () => {
  const patchClient = (clientId: string, body: unknown) =>
    fetch(`${akamon.url}/admin/api/clients/${clientId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${akamon.operatorToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  test('null is refused for a setting that cannot be unset, and nothing changes', async () => {
    const rp = await akamon.createClient({ name: 'Null RP' });
    for (const body of [{ name: null }, { requireMfa: null }, { public: null }]) {
      const response = await patchClient(rp.clientId, body);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'invalid_request' });
    }
    expect((await akamon.akamon.clients.show(rp.clientId)).name).toBe('Null RP');
  });

  test('null clears a nullable setting; what the change leaves out keeps its value', async () => {
    const rp = await akamon.createClient({ name: 'Clear RP' });
    expect((await patchClient(rp.clientId, { description: 'Mail for staff', requireMfa: true })).status).toBe(200);
    expect((await patchClient(rp.clientId, { description: null })).status).toBe(200);
    const shown = await akamon.akamon.clients.show(rp.clientId);
    expect(shown).toMatchObject({ name: 'Clear RP', description: null, requireMfa: true });
  });
});

describe('headers and cookies', () => {
  test('pages carry strict security headers; cookies are HttpOnly and SameSite', async () => {
    const browser = new Browser(akamon.url);
    const response = await browser.request(authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }));
    const page = await browser.request(response.headers.get('location')!);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'.*frame-ancestors 'none'/);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('referrer-policy')).toBe('same-origin');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('cache-control')).toBe('no-store');
    for (const cookie of [...response.headers.getSetCookie(), ...page.headers.getSetCookie()]) {
      expect(cookie.toLowerCase()).toContain('httponly');
      expect(cookie.toLowerCase()).toContain('samesite=lax');
    }
  });

  test('no CORS on the authorization endpoint', async () => {
    const response = await fetch(authorizeUrl(akamon.url, { client_id: client.clientId }), { headers: { origin: 'https://evil.example' }, redirect: 'manual' });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('production mode', () => {
  test('refuses to start without an https issuer, a secret or the TLS proxy', () => {
    const base = { AKAMON_ENV: 'production', AKAMON_ISSUER: 'https://login.example.ac.jp', AKAMON_SECRET: 's'.repeat(40), AKAMON_TRUST_PROXY: 'true' };
    expect(() => loadConfig(base)).not.toThrow();
    expect(() => loadConfig({ ...base, AKAMON_ISSUER: undefined })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, AKAMON_ISSUER: 'http://login.example.ac.jp' })).toThrow(/https/);
    expect(() => loadConfig({ ...base, AKAMON_SECRET: undefined })).toThrow(/AKAMON_SECRET/);
    expect(() => loadConfig({ ...base, AKAMON_SECRET: 'short' })).toThrow(/32 characters/);
    expect(() => loadConfig({ ...base, AKAMON_TRUST_PROXY: 'false' })).toThrow(/proxy/);
  });

  test('serves with prefixed secure cookies and HSTS behind the proxy, and refuses plain HTTP', async () => {
    const prod = await startAkamon({ env: { AKAMON_ENV: 'production', AKAMON_ISSUER: 'https://login.example.ac.jp', AKAMON_TRUST_PROXY: 'true', AKAMON_INTERNAL_URL: '{url}' } });
    try {
      const rp = await prod.createClient({ redirectUris: ['https://rp.example.ac.jp/cb'] });
      const plain = await fetch(`${prod.url}/.well-known/openid-configuration`);
      expect(plain.status).toBe(400);
      const health = await fetch(`${prod.url}/healthz`);
      expect(health.status).toBe(200);
      const browser = new Browser(prod.url);
      browser.extraHeaders = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'login.example.ac.jp' };
      const discovery = await browser.request('/.well-known/openid-configuration');
      expect(((await discovery.json()) as { issuer: string }).issuer).toBe('https://login.example.ac.jp');
      expect(discovery.headers.get('strict-transport-security')).toMatch(/max-age=\d+; includeSubDomains/);
      const auth = await browser.request(authorizeUrl(prod.url, { client_id: rp.clientId, redirect_uri: rp.redirectUri, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }));
      // The first step's page itself (interaction/router.ts drawFirstStep), with the interaction's cookie.
      expect(auth.status).toBe(200);
      const cookies = auth.headers.getSetCookie();
      expect(cookies.some((c) => c.startsWith('__Secure-akamon_interaction=') && /;\s*secure/i.test(c))).toBe(true);
      // The account home reaches Akamon through the internal URL yet sends the browser to the public
      // issuer, with a __Host- cookie that browsers accept (Path=/).
      const home = await browser.request('/account/login');
      expect(home.status).toBe(302);
      expect(home.headers.get('location')).toMatch(/^https:\/\/login\.example\.ac\.jp\/auth\?/);
      const flow = home.headers.getSetCookie().find((c) => c.startsWith('__Host-akamon_home_flow='));
      expect(flow).toMatch(/;\s*path=\/;/i);
      expect(flow).toMatch(/;\s*secure/i);
      // The language switch's cookie too (a security review found it plain): a sibling subdomain cannot plant it.
      const lang = await browser.request('/lang?to=en&back=/');
      expect(lang.headers.getSetCookie()).toEqual([expect.stringMatching(/^__Host-akamon_lang=en; path=\/;.*secure/i)]);
      // Answers that set cookies are never cached (a review found the redirects without Cache-Control).
      expect([lang.headers.get('cache-control'), home.headers.get('cache-control')]).toEqual(['no-store', 'no-store']);
      const page = (cookie: string) =>
        fetch(`${prod.url}/`, { headers: { cookie, 'accept-language': 'ja', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'login.example.ac.jp' } }).then((r) => r.text());
      expect(await page('__Host-akamon_lang=en')).toContain('<html lang="en"');
      expect(await page('akamon_lang=en')).toContain('<html lang="ja"');
      // The admin API answers the CLI on the same machine over plain HTTP; other paths do not.
      const admin = await fetch(`${prod.url}/admin/api/clients`, { headers: { authorization: `Bearer ${prod.operatorToken}` } });
      expect(admin.status).toBe(200);
      // Trusting every local network is allowed, and said at start-up.
      expect(prod.logs.join('')).toContain('set AKAMON_TRUSTED_PROXIES to the proxies in front of Akamon');
    } finally {
      await prod.close();
    }
  });

  test('X-Forwarded-Proto from a peer that is not a trusted proxy counts for nothing: plain HTTP is still refused', async () => {
    const prod = await startAkamon({ env: { AKAMON_ENV: 'production', AKAMON_ISSUER: 'https://login.example.ac.jp', AKAMON_TRUSTED_PROXIES: '192.0.2.1' } });
    try {
      const forged = await fetch(`${prod.url}/.well-known/openid-configuration`, { headers: { 'x-forwarded-proto': 'https' } });
      expect(forged.status).toBe(400);
      expect(await forged.text()).toContain('HTTPS is required');
      expect(prod.logs.join('')).not.toContain('set AKAMON_TRUSTED_PROXIES to the proxies in front of Akamon');
    } finally {
      await prod.close();
    }
  });
});

test('behind the proxy the client address is the one the proxy appended, not a forged one', async () => {
  const proxied = await startAkamon({ env: { AKAMON_TRUST_PROXY: 'true' } });
  try {
    const rp = await proxied.createClient();
    const account = await proxied.createReadyAccount();
    const browser = new Browser(proxied.url);
    browser.extraHeaders = { 'x-forwarded-for': '198.51.100.7, 203.0.113.9' };
    const { page } = await startAuthorization(browser, proxied, rp);
    await enterCredentials(browser, page, account.commonId, 'Wrong-password-1');
    const [event] = await proxied.deps.signinLog.list({ accountId: account.id, limit: 1 });
    expect(event.ip).toBe('203.0.113.9');
  } finally {
    await proxied.close();
  }
});

describe('back-channel logout', () => {
  async function signInAndLogOut(node: RunningAkamon, uri: string) {
    const rp = await node.createClient({ name: 'Back-channel RP', backchannelLogoutUri: uri, redirectUris: ['http://127.0.0.1:9/bc'] });
    const account = await node.createReadyAccount();
    const browser = new Browser(node.url);
    const result = await signIn(browser, node, rp, account);
    await redeem(node, rp, result.code!, result.verifier);
    const confirm = await browser.visit(`${node.url}/session/end`);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.html)![1];
    await browser.visit(`${node.url}/session/end/confirm`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ xsrf, logout: 'yes' }) });
    return rp;
  }

  test('delivery to loopback and private addresses is refused by default', async () => {
    const rp = await backchannelReceiver();
    try {
      await signInAndLogOut(akamon, rp.url);
      await new Promise((r) => setTimeout(r, 300));
      expect(rp.received).toHaveLength(0);
      expect(akamon.logs.join('')).toContain('back-channel logout delivery failed');
    } finally {
      await rp.close();
    }
  });

  test('AKAMON_BACKCHANNEL_ALLOW_PRIVATE=true delivers a signed logout token', async () => {
    const node = await startAkamon({ env: { AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'true' } });
    const rp = await backchannelReceiver();
    try {
      const registered = await signInAndLogOut(node, rp.url);
      const deadline = Date.now() + 3000;
      while (rp.received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(rp.received).toHaveLength(1);
      const claims = JSON.parse(Buffer.from(rp.received[0].split('.')[1], 'base64url').toString());
      expect(claims.aud).toBe(registered.clientId);
      expect(claims.events).toHaveProperty(['http://schemas.openid.net/event/backchannel-logout']);
      expect(claims.sid).toEqual(expect.any(String));
    } finally {
      await rp.close();
      await node.close();
    }
  });
});

test('the identifier page is translated from ui_locales and Accept-Language', async () => {
  const ja = new Browser(akamon.url);
  ja.acceptLanguage = 'ja,en;q=0.5';
  expect((await startAuthorization(ja, akamon, client)).page.html).toContain('共通ID');
  const hinted = new Browser(akamon.url);
  expect((await startAuthorization(hinted, akamon, client, { ui_locales: 'ja-JP' })).page.html).toContain('<html lang="ja"');
  const en = new Browser(akamon.url);
  expect((await startAuthorization(en, akamon, client)).page.html).toContain('Common ID');
});

test('the log of a whole sign-in never contains a password, code, token, secret or CSRF value', async () => {
  const account = await akamon.createAccount();
  const browser = new Browser(akamon.url);
  const started = await startAuthorization(browser, akamon, client);
  const change = await enterCredentials(browser, started.page, account.commonId, account.password);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(change.html)![1];
  const newPassword = 'Unique-Secret-Phrase-77';
  const done = await browser.submit(change, /\/change$/, { current: account.password, new: newPassword, confirm: newPassword });
  const code = codeFrom(done);
  const tokens = await redeem(akamon, client, code, started.verifier);
  const refreshed = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token });
  const created = await fetch(`${akamon.url}/admin/api/accounts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${akamon.operatorToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ commonId: '5555555555', name: 'Log Test', affiliation: 'staff' }),
  });
  const { initialPassword } = (await created.json()) as { initialPassword: string };
  const logs = akamon.logs.join('');
  expect(logs).toContain('"path":"/token"');
  for (const secret of [
    account.password,
    newPassword,
    code,
    started.verifier,
    tokens.body.access_token,
    tokens.body.refresh_token,
    tokens.body.id_token,
    refreshed.body.refresh_token,
    client.clientSecret!,
    csrf,
    initialPassword,
    akamon.operatorToken,
  ]) {
    expect(logs).not.toContain(secret);
  }
});

test('each request leaves one access line (request id, method, path without the query, status), and what its handlers log carries the same id', async () => {
  const response = await fetch(`${akamon.url}/auth?client_id=nobody&state=private-state-value`, { headers: { 'x-request-id': 'trace-12345678' } });
  expect(response.headers.get('x-request-id')).toBe('trace-12345678');
  const lines = akamon.logs
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const mine = lines.filter((line) => line.requestId === 'trace-12345678');
  expect(mine).toEqual([
    expect.objectContaining({ msg: 'protocol request refused', error: 'invalid_client', clientId: 'nobody', detail: 'client not found' }),
    expect.objectContaining({ msg: 'request', method: 'GET', path: '/auth', status: 400, service: 'akamon' }),
  ]);
  expect(akamon.logs.join('')).not.toContain('private-state-value');
});

test('ending every session of an account (sign out everywhere, reset, revocation) tells back-channel relying parties', async () => {
  const node = await startAkamon({ env: { AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'true' } });
  const { received, url, close } = await backchannelReceiver();
  try {
    const rp = await node.createClient({ name: 'BC RP', backchannelLogoutUri: url, redirectUris: ['http://127.0.0.1:9/bc2'] });
    const account = await node.createReadyAccount();
    const result = await signIn(new Browser(node.url), node, rp, account);
    await redeem(node, rp, result.code!, result.verifier);
    await node.deps.accountService.setStatus(account.commonId, 'suspended');
    expect(received).toHaveLength(1);
    const claims = JSON.parse(Buffer.from(received[0].split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({ aud: rp.clientId, sub: account.id });
  } finally {
    await close();
    await node.close();
  }
});
