import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { adminApi, newCommonId, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, decode, pkce, type Page } from '../support/browser.ts';
import { consoleOperator } from '../support/console-operator.ts';
import { enterCredentials, redeem, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';
import { runCli } from '../support/processes.ts';

// Guards issue 12 point 5: NUL, C0/C1 controls, lone surrogates and invalid UTF-8 in any parameter
// are refused at the edge with a 400 (RFC 6749 JSON on the protocol endpoints, a ja/en page on
// Akamon's pages, JSON on the admin API) before anything is looked up, stored, sent or mailed, and
// without a stack trace in the log. Before the guard, a NUL reached PostgreSQL and answered 500.

let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  client = await akamon.createClient({ name: 'Hostile RP', redirectUris: ['http://127.0.0.1:9/hostile'] });
});
afterAll(() => akamon.close());

/** Percent-encoded payloads as they arrive on the wire. */
const HOSTILE = {
  nul: '%00',
  c1: '%C2%85', // U+0085 NEXT LINE
  surrogate: '%ED%A0%80', // U+D800 alone
  invalid_utf8: '%FF',
} as const;

const db = () => akamon.deps.database.db;
const count = async (table: 'oidc_payload' | 'otp_code' | 'account' | 'app_password') =>
  Number(
    (
      await db()
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

/** The log lines written while `run` ran, parsed. */
async function logsOf(run: () => Promise<void>): Promise<Array<Record<string, unknown>>> {
  const before = akamon.logs.length;
  await run();
  return akamon.logs
    .slice(before)
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function expectQuietLog(lines: Array<Record<string, unknown>>): void {
  expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
  expect(JSON.stringify(lines)).not.toMatch(/"stack"|node_modules/);
  expect(lines.some((l) => l.msg === 'input refused')).toBe(true);
}

async function expectOAuthRefusal(response: Response, parameter: RegExp): Promise<void> {
  expect(response.status).toBe(400);
  expect(response.headers.get('location')).toBeNull();
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.headers.get('cache-control')).toBe('no-store');
  const body = (await response.json()) as { error: string; error_description: string };
  expect(body.error).toBe('invalid_request');
  expect(body.error_description).toMatch(parameter);
  expect(body.error_description).toMatch(/control character|not valid UTF-8/);
}

const form = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
const post = (pathname: string, body: string | Buffer, headers: Record<string, string> = {}) =>
  fetch(`${akamon.url}${pathname}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
const basic = (c: { clientId: string; clientSecret: string | null }) => `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret}`).toString('base64')}`;

/**
 * Posts a page's form with one field sent as raw percent-encoded bytes: a browser turns a lone
 * surrogate into U+FFFD and never sends invalid UTF-8, so those come only from hand-made requests.
 */
async function submitRaw(browser: Browser, page: Page, action: RegExp, field: string, encoded: string, fields: Record<string, string> = {}) {
  const { url, body } = browser.form(page, action, fields);
  body.delete(field);
  const response = await browser.request(url, { method: 'POST', body: `${body}&${field}=${encoded}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  return { status: response.status, html: await response.text() };
}

test("the provider's paths pass by Akamon's routers, and its pages are theirs", () => {
  const { routes } = akamon.akamon;
  for (const path of ['/auth', '/auth/uid', '/token', '/token/introspection', '/me', '/jwks', '/.well-known/openid-configuration', '/session/end', '/reg']) {
    expect([path, routes.mayServe(path)]).toEqual([path, false]);
  }
  for (const path of ['/', '/interaction/uid', '/account', '/console', '/recover/start', '/saml/sso', '/admin/api/clients', '/scim/v2/Users', '/device/verify', '/metrics']) {
    expect([path, routes.mayServe(path)]).toEqual([path, true]);
  }
});

describe('protocol endpoints answer RFC 6749 JSON 400 and store nothing', () => {
  test('every OIDC parameter, every kind of bad text, on every endpoint', async () => {
    const { challenge } = pkce();
    const authQuery = {
      response_type: 'code',
      scope: 'openid',
      client_id: client.clientId,
      redirect_uri: encodeURIComponent(client.redirectUri),
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 'ok-state',
      nonce: 'ok-nonce',
    };
    const auth = { authorization: basic(client) };
    const cases: Array<{ name: string; send: (bad: string) => Promise<Response> }> = [];
    for (const parameter of ['client_id', 'state', 'nonce', 'login_hint']) {
      cases.push({ name: `GET /auth ${parameter}`, send: (bad) => fetch(`${akamon.url}/auth?${form({ ...authQuery, [parameter]: `x${bad}y` })}`, { redirect: 'manual' }) });
    }
    cases.push({ name: 'POST /auth state', send: (bad) => post('/auth', form({ ...authQuery, state: `x${bad}` })) });
    cases.push({
      name: 'POST /token code',
      send: (bad) => post('/token', form({ grant_type: 'authorization_code', code: `c${bad}`, redirect_uri: encodeURIComponent(client.redirectUri), code_verifier: 'v'.repeat(43) }), auth),
    });
    cases.push({ name: 'POST /token refresh_token', send: (bad) => post('/token', form({ grant_type: 'refresh_token', refresh_token: `r${bad}` }), auth) });
    cases.push({ name: 'POST /token client_id', send: (bad) => post('/token', form({ grant_type: 'refresh_token', refresh_token: 'r', client_id: `c${bad}` })) });
    cases.push({ name: 'POST /token/introspection token', send: (bad) => post('/token/introspection', form({ token: `t${bad}` }), auth) });
    cases.push({ name: 'POST /token/revocation token', send: (bad) => post('/token/revocation', form({ token: `t${bad}` }), auth) });
    cases.push({ name: 'POST /me access_token', send: (bad) => post('/me', form({ access_token: `a${bad}` })) });
    cases.push({ name: 'GET /me query', send: (bad) => fetch(`${akamon.url}/me?x=${bad}`, { headers: { authorization: 'Bearer abc' } }) });
    cases.push({ name: 'GET /session/end state', send: (bad) => fetch(`${akamon.url}/session/end?state=s${bad}`, { redirect: 'manual' }) });
    cases.push({ name: 'GET /session/end client_id', send: (bad) => fetch(`${akamon.url}/session/end?client_id=c${bad}`, { redirect: 'manual' }) });
    cases.push({ name: 'POST /session/end/confirm xsrf', send: (bad) => post('/session/end/confirm', form({ xsrf: `x${bad}`, logout: 'yes' })) });
    cases.push({ name: 'GET /jwks query', send: (bad) => fetch(`${akamon.url}/jwks?kid=${bad}`, { headers: { origin: 'http://rp.example' } }) });

    const payloadsBefore = await count('oidc_payload');
    const lines = await logsOf(async () => {
      for (const { name, send } of cases) {
        for (const [kind, bad] of Object.entries(HOSTILE)) {
          const response = await send(bad);
          const parameter = /(?:client_id|state|nonce|login_hint|code|refresh_token|token|access_token|xsrf|x|kid) parameter/;
          try {
            await expectOAuthRefusal(response, parameter);
          } catch (error) {
            throw new Error(`${name} with ${kind}: ${(error as Error).message}`);
          }
        }
      }
    });
    expectQuietLog(lines);
    // Nothing was stored: no interaction from /auth, no session from /session/end, no consumed token.
    expect(await count('oidc_payload')).toBe(payloadsBefore);
    // The log says which parameter and why, never the value.
    const refused = lines.filter((l) => l.msg === 'input refused');
    expect(refused).toHaveLength(cases.length * Object.keys(HOSTILE).length);
    expect(refused[0]).toMatchObject({ where: 'the client_id parameter', problem: 'control_character', surface: 'protocol' });
  });

  test('a refused token request consumes nothing: the real code and refresh token still work afterwards', async () => {
    const account = await akamon.createReadyAccount();
    const result = await signIn(new Browser(akamon.url), akamon, client, account);
    for (const bad of Object.values(HOSTILE)) {
      expect(
        (
          await post('/token', form({ grant_type: 'authorization_code', code: `${result.code}${bad}`, redirect_uri: encodeURIComponent(client.redirectUri), code_verifier: result.verifier }), {
            authorization: basic(client),
          })
        ).status,
      ).toBe(400);
    }
    const tokens = await redeem(akamon, client, result.code!, result.verifier);
    expect(tokens.status).toBe(200);
    const refreshToken = tokens.body.refresh_token as string;
    expect(refreshToken).toBeTruthy();
    expect((await post('/token', form({ grant_type: 'refresh_token', refresh_token: `${refreshToken}%00` }), { authorization: basic(client) })).status).toBe(400);
    expect((await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: refreshToken })).status).toBe(200);
  });

  test('other invalid UTF-8 (%C3%28, raw bytes) and bad bodies', async () => {
    await expectOAuthRefusal(await fetch(`${akamon.url}/auth?client_id=${client.clientId}&state=%C3%28`, { redirect: 'manual' }), /the state parameter/);
    await expectOAuthRefusal(await fetch(`${akamon.url}/auth?client_id=${client.clientId}&nonce=%C0%80`, { redirect: 'manual' }), /the nonce parameter/);
    // A parameter name is judged too.
    await expectOAuthRefusal(await fetch(`${akamon.url}/auth?client_id=${client.clientId}&st%00ate=1`, { redirect: 'manual' }), /a parameter name/);
    // Raw bytes that are not UTF-8 in a form body.
    const raw = await post('/token', Buffer.concat([Buffer.from('grant_type=refresh_token&refresh_token=r'), Buffer.from([0xff, 0xfe])]), { authorization: basic(client) });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toEqual({ error: 'invalid_request', error_description: 'the request body is not valid UTF-8 text' });
    // JSON bodies (dynamic registration's content type): escapes are judged once decoded.
    for (const body of ['{"client_name":"a\\u0000b"}', '{"client_name":"\\ud800"}', '{"redirect_uris":["https://rp.example/\\u0085"]}']) {
      const response = await post('/reg', body, { 'content-type': 'application/json' });
      await expectOAuthRefusal(response, /the (client_name|redirect_uris) field/);
    }
    const broken = await post('/reg', '{"client_name":', { 'content-type': 'application/json' });
    expect(broken.status).toBe(400);
    expect(await broken.json()).toEqual({ error: 'invalid_request', error_description: 'the request body is not valid JSON' });
    const latin1 = await post('/token', 'grant_type=refresh_token', { 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' });
    expect(latin1.status).toBe(415);
    const huge = await post('/token', `grant_type=refresh_token&x=${'a'.repeat(70 * 1024)}`);
    expect(huge.status).toBe(413);
  });

  test('what is allowed still passes: line breaks in the JSON claims parameter, non-ASCII text, a literal "%"', async () => {
    const claims = encodeURIComponent(JSON.stringify({ id_token: { email: { essential: true } } }, null, 2));
    expect(claims).toContain('%0A');
    for (const extra of [`claims=${claims}`, 'login_hint=%E5%B1%B1%E7%94%B0', 'state=100%25', 'state=50%zz']) {
      const response = await fetch(
        `${akamon.url}/auth?${form({ response_type: 'code', scope: 'openid', client_id: client.clientId, redirect_uri: encodeURIComponent(client.redirectUri), code_challenge: pkce().challenge, code_challenge_method: 'S256' })}&${extra}`,
        { redirect: 'manual' },
      );
      expect(response.status).toBe(200);
      expect(await response.text()).toMatch(/action="\/interaction\/[^/"]+\/identifier"/);
    }
  });
});

describe('a method an endpoint does not take', () => {
  // Found by a protocol probe: the provider let such requests fall through to the HTML 404 page.
  test('gets 405 with Allow: RFC 6749 JSON on the endpoints programs call, the ja/en page on the browser ones', async () => {
    const cases: Array<[string, string, string, boolean]> = [
      ['GET', '/token', 'POST', true],
      ['PUT', '/token', 'POST', true],
      ['DELETE', '/Token/', 'POST', true],
      ['GET', '/token/introspection', 'POST', true],
      ['GET', '/token/revocation', 'POST', true],
      ['GET', '/request', 'POST', true],
      ['PUT', '/device/auth', 'POST', true],
      ['PUT', '/me', 'GET, HEAD, POST', true],
      ['POST', '/jwks', 'GET, HEAD', true],
      ['DELETE', '/.well-known/openid-configuration', 'GET, HEAD', true],
      ['POST', '/auth', 'GET, HEAD', false],
      ['PUT', '/session/end', 'GET, HEAD', false],
    ];
    for (const [method, path, allow, json] of cases) {
      const response = await fetch(`${akamon.url}${path}`, {
        method,
        headers: { accept: json ? 'application/json' : 'text/html', authorization: basic(client), 'content-type': 'application/x-www-form-urlencoded' },
        body: method === 'GET' ? undefined : 'grant_type=client_credentials',
      });
      const text = await response.text();
      expect([method, path, response.status, response.headers.get('allow')]).toEqual([method, path, 405, allow]);
      if (json) expect(JSON.parse(text)).toMatchObject({ error: 'invalid_request' });
      else expect(text).toContain('<html');
    }
    // The methods they take are untouched.
    expect((await fetch(`${akamon.url}/jwks`)).status).toBe(200);
    expect((await fetch(`${akamon.url}/token`, { method: 'OPTIONS', headers: { origin: 'https://app.example.ac.jp', 'access-control-request-method': 'POST' } })).status).toBe(204);
  });
});

describe('pages answer a ja/en page', () => {
  test('the sign-in form, a path and a query string', async () => {
    const browser = new Browser(akamon.url);
    const { page } = await startAuthorization(browser, akamon, client);
    const lines = await logsOf(async () => {
      const refused = await browser.submit(page, /\/identifier$/, { identifier: '12345\u000067890' });
      expect(refused.status).toBe(400);
      expect(refused.html).toContain('contains characters that cannot be accepted');
      browser.acceptLanguage = 'ja';
      const ja = await browser.submit(page, /\/identifier$/, { identifier: '12345\u0085' });
      expect(ja.status).toBe(400);
      expect(ja.html).toContain('受け付けられない文字');
      browser.acceptLanguage = 'en';
      const uid = new URL(page.url).pathname.split('/')[2];
      for (const url of [`/interaction/${uid}%00`, `/interaction/${uid}%ED%A0%80`, '/recover?x=%FF', '/account?lang=%C2%85']) {
        const response = await browser.request(url);
        expect(response.status).toBe(400);
        expect(response.headers.get('content-type')).toMatch(/^text\/html/);
        expect(await response.text()).toContain('contains characters that cannot be accepted');
      }
    });
    expectQuietLog(lines);
    // The interaction was left as it was: the right identifier still goes on.
    const account = await akamon.createReadyAccount();
    const next = await enterCredentials(browser, page, account.commonId, account.password);
    expect(next.url).toMatch(/^http:\/\/127\.0\.0\.1:9\/hostile\?code=/);
  });

  test('the forgotten-password form: a NUL Common ID is refused before the captcha and no mail goes out', async () => {
    const browser = new Browser(akamon.url);
    const start = await browser.visit(`${akamon.url}/recover`);
    const mails = akamon.mails.length;
    const codes = await count('otp_code');
    for (const bad of Object.values(HOSTILE)) {
      const refused = await submitRaw(browser, start, /\/recover\/start$/, 'identifier', `0000000000${bad}`, { captcha: 'x' });
      expect(refused.status).toBe(400);
      expect(refused.html).toContain('contains characters that cannot be accepted');
    }
    expect(akamon.mails.length).toBe(mails);
    expect(await count('otp_code')).toBe(codes);
  });

  test('the recovery email form: a NUL address is neither mailed nor stored', async () => {
    const account = await akamon.createReadyAccount({ email: null });
    const browser = new Browser(akamon.url);
    const security = await enterCredentials(browser, await browser.visit(`${akamon.url}/account/security`), account.commonId, account.password);
    expect(new URL(security.url).pathname).toBe('/account/security');
    const mails = akamon.mails.length;
    const codes = await count('otp_code');
    const lines = await logsOf(async () => {
      for (const email of ['a\u0000b@example.com', 'victim@example.com\u0000', 'a\u0085@example.com']) {
        const refused = await browser.submit(security, /\/account\/security\/email$/, { email });
        expect(refused.status).toBe(400);
        expect(refused.html).toContain('contains characters that cannot be accepted');
      }
      for (const bad of [HOSTILE.surrogate, HOSTILE.invalid_utf8]) {
        const refused = await submitRaw(browser, security, /\/account\/security\/email$/, 'email', `a${bad}%40example.com`);
        expect(refused.status).toBe(400);
        expect(refused.html).toContain('contains characters that cannot be accepted');
      }
    });
    expectQuietLog(lines);
    // What a browser sends for a lone surrogate (U+FFFD), or any address outside ASCII, is no address
    // Akamon can mail: refused by the address rule (it used to be mailed, then fail the cookie with a 500).
    for (const email of ['a\ud800@example.com', 'はなこ@example.com']) {
      const refused = await browser.submit(security, /\/account\/security\/email$/, { email });
      expect(refused.status).toBe(400);
      expect(refused.html).toContain('Enter an email address, such as hanako@example.com.');
    }
    expect(akamon.mails.length).toBe(mails);
    expect(await count('otp_code')).toBe(codes);
    expect((await akamon.deps.accounts.findById(account.id))!.recovery_email).toBeNull();
    // A good address still works on the same page.
    const sent = await browser.submit(security, /\/account\/security\/email$/, { email: 'good@example.com' });
    expect(sent.status).toBe(200);
    expect(akamon.mails.at(-1)!.to).toEqual(['good@example.com']);
  });

  test('a password with a control character is refused by its named rule, in both languages', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const security = await enterCredentials(browser, await browser.visit(`${akamon.url}/account/security`), account.commonId, account.password);
    for (const [control, language, text] of [
      ['\u0007', 'en', 'It contains a control character'],
      ['\u0000', 'en', 'It contains a control character'],
      ['\u0085', 'ja', '使えない制御文字'],
    ] as const) {
      browser.acceptLanguage = language;
      const next = `Kq7#vLm2$pRt9w-New${control}x`;
      const refused = await browser.submit(security, /\/account\/security\/password$/, { current: account.password, new: next, confirm: next });
      expect(refused.status).toBe(400);
      expect(refused.html).toContain(text);
    }
    // The password did not change.
    browser.acceptLanguage = 'en';
    expect((await signIn(new Browser(akamon.url), akamon, client, account)).code).toBeTruthy();
  });

  test("a form refused for a pasted tab leads back to the form's page (its Referer on this site), never elsewhere", async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const home = await enterCredentials(browser, await browser.visit(`${akamon.url}/account`), account.commonId, account.password);
    // A name pasted from a spreadsheet cell, with a tab in it; the browser names the page the form was on.
    const { url, body } = browser.form(home, /\/account\/app-passwords$/, { name: 'Thunderbird\tlaptop' });
    const send = (referer: string) => browser.visit(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', referer } });
    const refused = await send(`${akamon.url}/account`);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('contains characters that cannot be accepted');
    expect(refused.html).toContain('<a href="/account">Back to the form</a>');
    expect(refused.html).not.toContain('Go to the Akamon home page');
    expect(refused.html).toContain(`href="/lang?to=ja&amp;back=${encodeURIComponent('/account')}"`);
    // Another site's page, or a path that a browser reads as another host, is no way back: the start page is.
    for (const referer of ['https://evil.example/account', `${akamon.url}//evil.example/x`, `${akamon.url}/\\evil.example/x`, 'not a url']) {
      const elsewhere = await send(referer);
      expect(elsewhere.status).toBe(400);
      expect(elsewhere.html).toContain('<a href="/">Go to the Akamon home page</a>');
    }
    expect(await akamon.deps.appPasswords.list(account.id)).toEqual([]);
  });

  test('an app-password name with a bidi override is refused and nothing is created', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const home = await enterCredentials(browser, await browser.visit(`${akamon.url}/account`), account.commonId, account.password);
    for (const name of ['Mail \u202Egnp.exe', 'Mail\u2066x\u2069', 'Mail\u200F']) {
      const refused = await browser.submit(home, /\/account\/app-passwords$/, { name });
      expect(refused.status).toBe(400);
      expect(refused.html).toContain('without control or text-direction characters');
    }
    expect(await akamon.deps.appPasswords.list(account.id)).toEqual([]);
  });
});

describe('admin API and CLI', () => {
  const admin = (method: string, pathname: string, body?: unknown) =>
    fetch(`${akamon.url}/admin/api${pathname}`, {
      method,
      headers: { authorization: `Bearer ${akamon.operatorToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });

  test('names with bidi overrides or controls, and lone surrogates, are refused with JSON and nothing is stored', async () => {
    const accounts = await count('account');
    const lines = await logsOf(async () => {
      for (const name of ['Hanako \u202Eoyk', 'Hanako\u2067', 'Hanako\u200E', 'Hanako\u0085', 'Hanako\u0000', 'Hanako\ud800', 'Hanako\nTodai']) {
        const response = await admin('POST', '/accounts', { commonId: '7000000001', name, affiliation: 'student' });
        expect(response.status).toBe(400);
        const body = (await response.json()) as { error: string; error_description: string };
        // Controls and ill-formed text stop at the edge; bidi characters at the domain's name rule.
        expect(['invalid_request', 'invalid_name']).toContain(body.error);
        expect(body.error_description).toMatch(/the name field|on one line, without control or bidirectional formatting characters/);
      }
    });
    expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
    expect(await count('account')).toBe(accounts);
    expect((await admin('GET', '/accounts/7000000001')).status).toBe(404);

    const created = await admin('POST', '/clients', { name: 'Evil \u202Ecod.exe', redirectUris: ['https://rp.example/cb'] });
    expect(created.status).toBe(400);
    expect(((await created.json()) as { error: string }).error).toBe('invalid_name');
    const good = await admin('POST', '/clients', { name: 'Good RP', redirectUris: ['https://rp.example/cb'] });
    expect(good.status).toBe(201);
    const { client: registered } = (await good.json()) as { client: { clientId: string } };
    // A description keeps its line breaks, but not a bidi override.
    expect((await admin('PATCH', `/clients/${registered.clientId}`, { description: 'Line one\nLine two' })).status).toBe(200);
    const bidi = await admin('PATCH', `/clients/${registered.clientId}`, { description: 'Line \u202E' });
    expect(bidi.status).toBe(400);
    expect(((await bidi.json()) as { error: string }).error).toBe('invalid_description');
    expect((await akamon.deps.clientStore.find(registered.clientId))!.description).toBe('Line one\nLine two');

    const path = await admin('GET', '/accounts/%00');
    expect(path.status).toBe(400);
    expect(await path.json()).toEqual({ error: 'invalid_request', error_description: 'the request path contains a control character' });
  });

  test('an unknown endpoint or method is answered in JSON (404, 405 with Allow), and only to a caller with a token', async () => {
    const unknown = await admin('GET', '/nothing/here');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: 'no_such_endpoint', error_description: 'no endpoint GET /admin/api/nothing/here' });
    const wrongMethod = await admin('PUT', '/clients');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')?.split(', ').sort()).toEqual(['GET', 'HEAD', 'POST']);
    expect(((await wrongMethod.json()) as { error: string }).error).toBe('method_not_allowed');
    const served = await admin('GET', '/clients');
    expect(served.status).toBe(200);
    const anonymous = await fetch(`${akamon.url}/admin/api/nothing/here`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  // Found by a probe of the operator surfaces (admin API, SCIM, console import, CLI): each input
  // below was half-accepted or answered with a 500 before.
  describe('bodies, dates and ids a careless or hostile caller sends', () => {
    /** A body sent as it is, with the content type given ('' sends none of its own). */
    const raw = (method: string, pathname: string, body: string, type: string) =>
      fetch(`${akamon.url}/admin/api${pathname}`, { method, headers: { authorization: `Bearer ${akamon.operatorToken}`, ...(type ? { 'content-type': type } : {}) }, body });

    /** The admin API's refusal: `status`, JSON {error, error_description}. */
    async function refusal(response: Response, status = 400): Promise<{ error: string; error_description: string }> {
      const text = await response.text();
      expect({ status: response.status, type: response.headers.get('content-type') }).toEqual({ status, type: expect.stringMatching(/^application\/json/) });
      return JSON.parse(text) as { error: string; error_description: string };
    }

    const deep = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

    test('a text field sent as an object or a list is refused, never stored as "[object Object]" or the list joined', async () => {
      const accounts = await count('account');
      const [objectName, listId] = [newCommonId(), newCommonId()];
      expect(await refusal(await admin('POST', '/accounts', { commonId: objectName, name: {}, affiliation: 'student' }))).toEqual({
        error: 'invalid_request',
        error_description: 'name must be a string',
      });
      expect((await refusal(await admin('POST', '/accounts', { commonId: [listId], name: 'List Id', affiliation: 'student' }))).error_description).toBe('commonId must be a string');
      expect((await refusal(await admin('POST', '/accounts', { commonId: newCommonId(), name: 'List Affiliation', affiliation: ['student'] }))).error_description).toBe('affiliation must be a string');
      expect((await refusal(await admin('POST', '/education', { commonId: [listId], year: 2026, passedOn: '2026-05-01' }))).error_description).toBe('commonId must be a string');
      expect(await akamon.deps.accounts.findByCommonId(objectName)).toBeUndefined();
      expect(await akamon.deps.accounts.findByCommonId(listId)).toBeUndefined();
      expect(await count('account')).toBe(accounts);
    });

    test('a hardware token whose serial is not text, or whose digits and period are not numbers, is refused', async () => {
      const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
      expect((await refusal(await admin('POST', '/tokens', { serial: ['PROBE-1'], secret, digits: 6, period: 30 }))).error).toBe('invalid_serial');
      expect((await refusal(await admin('POST', '/tokens', { serial: 'PROBE-1', secret, digits: '6', period: 30 }))).error).toBe('invalid_digits');
      expect((await refusal(await admin('POST', '/tokens', { serial: 'PROBE-1', secret, digits: 6, period: [30] }))).error).toBe('invalid_period');
      const tokens = (await adminApi(akamon, 'GET', '/tokens')).body.tokens as Array<{ serial: string }>;
      expect(tokens.map((t) => t.serial)).not.toContain('PROBE-1');
    });

    test('a body that is not JSON is refused with 415, so a revocation "on" a date sent as text/plain revokes nothing', async () => {
      for (const type of ['text/plain', '', 'application/x-www-form-urlencoded']) {
        const account = await akamon.createReadyAccount();
        const response = await raw('POST', `/accounts/${account.commonId}/revoke`, JSON.stringify({ on: '2031-03-31', reason: 'graduation' }), type);
        expect({ type, error: (await refusal(response, 415)).error }).toEqual({ type, error: 'unsupported_media_type' });
        const row = (await akamon.deps.accounts.findByCommonId(account.commonId))!;
        expect({ type, status: row.status, revokedAt: row.revoked_at, revokeAt: row.revoke_at }).toEqual({ type, status: 'active', revokedAt: null, revokeAt: null });
      }
      // No body at all is still no body: this task takes none.
      const account = await akamon.createReadyAccount();
      expect((await raw('POST', `/accounts/${account.commonId}/unlock`, '', '')).status).toBe(200);
    });

    test('a date outside the years 1 to 9999 is a JSON 400 naming the parameter, not a 500 page', async () => {
      const lines = await logsOf(async () => {
        for (const since of ['-200000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '0000-12-31T00:00:00Z']) {
          expect((await refusal(await admin('GET', `/signins?since=${encodeURIComponent(since)}`))).error_description).toMatch(/^since must be one date of the years 1 to 9999/);
        }
        expect((await refusal(await admin('GET', '/revocations?until=99999-01-01'))).error_description).toMatch(/^until must be a date/);
        const account = await akamon.createReadyAccount();
        // 23:00 on the last day of 9999 five hours west of UTC is already the year 10000 in UTC.
        expect((await refusal(await admin('POST', `/accounts/${account.commonId}/revoke`, { on: '9999-12-31T23:00:00-05:00' }))).error_description).toMatch(/^on must be a date/);
        expect((await akamon.deps.accounts.findByCommonId(account.commonId))!.revoke_at).toBeNull();
      });
      expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
      expect((await admin('GET', `/signins?since=${encodeURIComponent('2026-04-01T00:00:00Z')}`)).status).toBe(200);
    });

    test('an API token id beyond the id column is not found on the admin API and in the console, not a 500', async () => {
      const lines = await logsOf(async () => {
        for (const id of ['99999999999', '2147483648', '0', 'abc']) {
          expect((await refusal(await admin('DELETE', `/operators/tokens/${id}`), 404)).error).toBe('token_not_found');
        }
        const { browser } = await consoleOperator(akamon, 'admin', null, '/console/operators');
        const page = await browser.visit('/console/operators');
        const csrf = decode(/name="_csrf" value="([^"]+)"/.exec(page.html)![1]);
        const revoke = await browser.request('/console/operators/tokens/99999999999/revoke', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `_csrf=${encodeURIComponent(csrf)}`,
          redirect: 'manual',
        } as RequestInit);
        expect(revoke.status).toBe(404);
      });
      expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
    });

    test('JSON nested deeper than 32 levels is a JSON 400 (it overflowed the stack: 500), and 32 levels are read', async () => {
      const accounts = await count('account');
      const body = (levels: number) => `{"commonId":"${newCommonId()}","name":${deep(levels)},"affiliation":"student"}`;
      expect(Buffer.byteLength(body(30_000))).toBeLessThan(64 * 1024);
      expect(await refusal(await raw('POST', '/accounts', body(30_000), 'application/json'))).toEqual({
        error: 'invalid_request',
        error_description: 'the request body nests objects and lists deeper than 32 levels',
      });
      expect((await refusal(await raw('POST', '/accounts', body(32), 'application/json'))).error_description).toMatch(/deeper than 32/);
      // The object and 31 lists: 32 levels, read, and refused for what they say.
      expect((await refusal(await raw('POST', '/accounts', body(31), 'application/json'))).error_description).toBe('name must be a string');
      expect(await count('account')).toBe(accounts);
    });

    test('a JSON object naming a key twice is refused (role "admin" then "helpdesk" made an admin or a help desk token by whim)', async () => {
      expect(await refusal(await raw('POST', '/operators/tokens', '{"name":"dup-role","role":"admin","role":"helpdesk"}', 'application/json'))).toEqual({
        error: 'invalid_request',
        error_description: 'the role field is given more than once in one object',
      });
      // The same key written with an escape is the same key.
      expect((await raw('POST', '/operators/tokens', '{"name":"dup-role","role":"helpdesk","\\u0072ole":"admin"}', 'application/json')).status).toBe(400);
      const once = await raw('POST', '/operators/tokens', '{"name":"dup-role-ok","role":"helpdesk","departments":[],"affiliations":[]}', 'application/json');
      expect(once.status).toBe(201);
      const tokens = (await adminApi(akamon, 'GET', '/operators/tokens')).body.tokens as Array<{ name: string }>;
      expect(tokens.map((t) => t.name).filter((n) => n.startsWith('dup-role'))).toEqual(['dup-role-ok']);
    });

    test('an unknown field of any length is echoed in at most 64 characters', async () => {
      const body = await refusal(await admin('POST', '/accounts', { commonId: newCommonId(), name: 'Long Field', affiliation: 'student', ['x'.repeat(5000)]: 1 }));
      expect(body.error_description).toMatch(/^unknown field x{64}…; an account has/);
    });
  });

  test('the CLI answers with a non-zero exit and one line', async () => {
    const cli = (args: string[]) => runCli({ url: akamon.url, token: akamon.operatorToken }, args);
    const oneLine = (r: { code: number | null; stderr: string }, pattern: RegExp) => {
      expect(r.code).not.toBe(0);
      const errs = r.stderr.split('\n').filter((l) => l.trim() !== '');
      expect(errs).toHaveLength(1);
      expect(errs[0]).toMatch(pattern);
    };
    // Checked by the CLI with the server's own rule, before anything is sent.
    oneLine(
      await cli(['account', 'create', '--id', '7000000002', '--name', 'Hanako \u202Eoyk', '--affiliation', 'student']),
      /^akamon: the name must be 1 to 200 characters on one line, without control or bidirectional/,
    );
    // Refused by the server's name rule and by the edge guard.
    oneLine(await cli(['client', 'create', '--name', 'Evil \u202Ecod.exe', '--redirect-uri', 'https://rp.example/cb']), /^akamon: the client name must be 1 to 200 characters on one line/);
    oneLine(await cli(['client', 'create', '--name', 'Evil\u0085', '--redirect-uri', 'https://rp.example/cb']), /^akamon: the name field contains a control character$/);
    oneLine(await cli(['client', 'show', 'x\u0085']), /^akamon: the request path contains a control character$/);
    expect((await admin('GET', '/accounts/7000000002')).status).toBe(404);
  });
});

// Found by an attack review: a Content-Type in other letter cases, or with a space before its
// parameters, must be read and judged by the guard like any other (the provider reads it so).
test('an oddly written form content type is still judged by the guard', async () => {
  for (const type of ['Application/X-WWW-Form-Urlencoded', 'application/x-www-form-urlencoded ; charset=utf-8']) {
    const response = await fetch(`${akamon.url}/token`, { method: 'POST', headers: { 'content-type': type }, body: 'grant_type=refresh_token&refresh_token=abc&client_id=x%00' });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_request');
  }
});
