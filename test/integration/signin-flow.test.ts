import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { authorizeUrl, Browser, decode, pkce } from '../support/browser.ts';
import { refuseWrites } from '../support/faults.ts';
import { codeFrom, enterCredentials, pastRetryGrace, redeem, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';
import { translator } from '../../src/i18n/i18n.ts';
import { renderLetters } from '../../src/letter/letter.ts';
import { ACCOUNT_CLIENT_ID, CONSOLE_CLIENT_ID } from '../../src/selfservice/account-client.ts';

let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  client = await akamon.createClient({ name: 'Learning System' });
});
afterAll(() => akamon.close());

describe('authorization code flow', () => {
  test('signs in, issues verified tokens with the documented claims, and logs the attempt', async () => {
    const account = await akamon.createReadyAccount({ name: 'Taro Akamon', affiliation: 'faculty' });
    const browser = new Browser(akamon.url);
    const result = await signIn(browser, akamon, client, account, { nonce: 'n-123' });
    expect(result.page.url.startsWith(client.redirectUri)).toBe(true);
    expect(new URL(result.page.url).searchParams.get('state')).toBe(result.state);
    expect(new URL(result.page.url).searchParams.get('iss')).toBe(akamon.url);

    const tokens = await redeem(akamon, client, result.code!, result.verifier);
    expect(tokens.status).toBe(200);
    expect(tokens.headers.get('cache-control')).toMatch(/no-store/);
    expect(tokens.body.refresh_token).toEqual(expect.any(String));
    const jwks = createRemoteJWKSet(new URL(`${akamon.url}/jwks`));
    const { payload, protectedHeader } = await jwtVerify(tokens.body.id_token, jwks, { issuer: akamon.url, audience: client.clientId });
    expect(['ES256', 'RS256']).toContain(protectedHeader.alg);
    expect(payload).toMatchObject({ sub: account.id, nonce: 'n-123', acr: 'urn:akamon:acr:password', amr: ['pwd'] });
    expect(typeof payload.auth_time).toBe('number');

    const userinfo = await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } });
    expect(userinfo.status).toBe(200);
    expect(await userinfo.json()).toEqual({
      sub: account.id,
      name: 'Taro Akamon',
      preferred_username: account.commonId,
      email: `${account.commonId}@mail.example.ac.jp`,
      email_verified: true,
      affiliation: 'faculty',
    });

    const log = await akamon.deps.signinLog.list({ accountId: account.id, limit: 10 });
    expect(log[0]).toMatchObject({ result: 'success', reason: 'password', client_id: client.clientId, ip: '127.0.0.1' });
  });

  test('the identifier is accepted with the realm suffix and with full-width digits', async () => {
    const realm = await startAkamon({ env: { AKAMON_REALM_SUFFIX: 'utac.example.ac.jp' } });
    try {
      const rp = await realm.createClient();
      const account = await realm.createReadyAccount();
      const withSuffix = await signIn(new Browser(realm.url), realm, rp, { commonId: `${account.commonId}@utac.example.ac.jp`, password: account.password });
      expect(withSuffix.code).toBeTruthy();
      const fullWidth = account.commonId.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d)));
      const wide = await signIn(new Browser(realm.url), realm, rp, { commonId: fullWidth, password: account.password });
      expect(wide.code).toBeTruthy();
      const wrongRealm = await startAuthorization(new Browser(realm.url), realm, rp);
      const b = new Browser(realm.url);
      const start = await startAuthorization(b, realm, rp);
      const refused = await b.submit(start.page, /\/identifier$/, { identifier: `${account.commonId}@other.example` });
      expect(refused.status).toBe(400);
      expect(refused.html).toContain('ten digits');
      expect(wrongRealm.page.status).toBe(200);
    } finally {
      await realm.close();
    }
  });

  test('unknown account and wrong password give the same page and status, and the same hashing work', async () => {
    const account = await akamon.createReadyAccount();
    const pages = [];
    const hashes: number[] = [];
    // Timing is equalised by construction: each attempt runs exactly one argon2 verification at
    // the configured parameters, against a dummy hash when the account does not exist.
    const verify = jest.spyOn(akamon.deps.hasher, 'verify');
    for (const commonId of [account.commonId, '9999999999']) {
      const browser = new Browser(akamon.url);
      const { page } = await startAuthorization(browser, akamon, client);
      verify.mockClear();
      pages.push(await enterCredentials(browser, page, commonId, 'Wrong-password-123'));
      hashes.push(verify.mock.calls.length);
      expect(verify.mock.calls[0][0]).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
    }
    verify.mockRestore();
    expect(hashes).toEqual([1, 1]);
    const strip = (html: string) =>
      html
        .replace(/(value|nonce)="[^"]*"/g, '')
        .replace(/interaction(\/|%2F)[\w-]+/g, '')
        .replace(/\d{10}/g, '');
    expect(pages[0].status).toBe(401);
    expect(pages[1].status).toBe(401);
    expect(strip(pages[0].html)).toBe(strip(pages[1].html));
    expect(pages[0].html).toContain('The Common ID or password is incorrect');
    const log = await akamon.deps.signinLog.list({ accountId: account.id, limit: 5 });
    expect(log[0]).toMatchObject({ result: 'failure', reason: 'wrong_password' });
  });

  test('an initial password typed as the letter prints it (groups of four, gaps between) is taken, with one verification; a chosen password is not', async () => {
    const student = await akamon.createAccount();
    // As typed from the paper: spaces between the groups, an ideographic one from a Japanese keyboard.
    const groups = student.password.match(/.{1,4}/gu)!;
    const printed = `${groups.slice(0, 2).join(' ')}\u3000${groups.slice(2).join(' ')}`;
    const verify = jest.spyOn(akamon.deps.hasher, 'verify');
    try {
      const browser = new Browser(akamon.url);
      const { page } = await startAuthorization(browser, akamon, client);
      verify.mockClear();
      const change = await enterCredentials(browser, page, student.commonId, printed);
      expect(verify).toHaveBeenCalledTimes(1);
      expect(change.html).toContain('Choose a new password');
      // The change step asks for the current password again: typed the same way, it is taken there too.
      const next = 'Correct-Horse-77#Tokyo';
      const done = await browser.submit(change, /\/change$/, { current: printed, new: next, confirm: next });
      expect(done.url).toMatch(/^http:\/\/127\.0\.0\.1:9\/callback\?code=/);

      // A password the person chose is checked as typed: spaces in it are part of it.
      const ready = await akamon.createReadyAccount();
      const other = new Browser(akamon.url);
      const started = await startAuthorization(other, akamon, client);
      verify.mockClear();
      const refused = await enterCredentials(other, started.page, ready.commonId, ready.password.match(/.{1,4}/gu)!.join(' '));
      expect(verify).toHaveBeenCalledTimes(1);
      expect(refused.status).toBe(401);
    } finally {
      verify.mockRestore();
    }
    // The letter prints the groups apart, and says the gaps need not be typed.
    const letter = await renderLetters([{ name: 'Letter Student', commonId: student.commonId, password: student.password, serverUrl: akamon.url, issuedAt: new Date(), timeZone: 'Asia/Tokyo' }]);
    expect(letter).toContain(translator('en')('letter.spaces'));
    expect(letter).toContain(translator('ja')('letter.spaces'));
  });

  test('the identifier is answered with the password page itself; its language switch leads to the interaction page, and the password still answers 303', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, client);
    const post = (form: { url: string; body: URLSearchParams }) => browser.request(form.url, { method: 'POST', body: form.body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const identifier = browser.form(started.page, /\/identifier$/, { identifier: account.commonId });
    const answer = await post(identifier);
    expect(answer.status).toBe(200);
    const page = { status: 200, url: identifier.url, html: await answer.text(), headers: answer.headers };
    expect(page.html).toMatch(/name="password"/);
    // The form's own URL takes only POSTs: the language switch goes back to the interaction's page.
    const switchUrl = decode(/class="lang-switch" href="([^"]+)"/.exec(page.html)![1]);
    expect(new URL(switchUrl, akamon.url).searchParams.get('back')).toBe(new URL(started.page.url).pathname);
    const japanese = await browser.visit(switchUrl);
    expect(japanese.status).toBe(200);
    expect(japanese.html).toMatch(/<html lang="ja"[\s\S]*name="password"/);
    // The password is never answered with a page to reload: 303 to the provider.
    const signedIn = await post(browser.form(page, /\/password$/, { password: account.password }));
    expect(signedIn.status).toBe(303);
    expect(new URL(signedIn.headers.get('location')!, akamon.url).pathname).toMatch(/^\/auth\//);
  });

  test("the authorization request answers with the first step's page itself, which takes the interaction's address", async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const { verifier, challenge } = pkce();
    const answer = await browser.request(authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256' }));
    expect([answer.status, answer.headers.get('location'), answer.headers.get('cache-control')]).toEqual([200, null, 'no-store']);
    const html = await answer.text();
    const uid = /action="\/interaction\/([^/"]+)\/identifier"/.exec(html)![1]!;
    expect(answer.headers.getSetCookie().some((c) => c.startsWith(`akamon_interaction=${uid};`) && c.includes(`path=/interaction/${uid}`))).toBe(true);
    // The browser's address becomes the interaction's, and the language switch leads there: neither repeats the authorization.
    expect(html).toContain(`data-url="/interaction/${uid}" defer></script>`);
    const switchUrl = decode(/class="lang-switch" href="([^"]+)"/.exec(html)![1]!);
    expect(new URL(switchUrl, akamon.url).searchParams.get('back')).toBe(`/interaction/${uid}`);
    const interactions = () => akamon.deps.database.db.selectFrom('oidc_payload').select('id').where('model', '=', 'Interaction').where('id', '=', uid).execute();
    expect(await interactions()).toHaveLength(1);
    // A reload shows the same step; the page's form signs in.
    const reloaded = await browser.visit(`/interaction/${uid}`);
    expect([reloaded.status, /name="identifier"/.test(reloaded.html)]).toEqual([200, true]);
    const page = { status: 200, url: `${akamon.url}/interaction/${uid}`, html, headers: answer.headers };
    const done = await enterCredentials(browser, page, account.commonId, account.password);
    expect((await redeem(akamon, client, codeFrom(done), verifier)).status).toBe(200);
    // The relying party's ui_locales decides the language of the page drawn in place, as of every step's page.
    const japanese = await new Browser(akamon.url).request(
      authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256', ui_locales: 'ja' }),
    );
    expect([japanese.status, /<html lang="ja"[\s\S]*name="identifier"/.test(await japanese.text())]).toEqual([200, true]);
  });

  test("a first step that cannot be drawn in the authorization's answer (a fault) leaves the provider's redirect to its page", async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    await signIn(browser, akamon, client, account);
    // prompt=login with a live session: the step notes the session's Common ID as it shows the password page.
    const stop = await refuseWrites(akamon.deps.database.db, 'refuse_first_step_note', { table: 'interaction_state', on: 'insert', when: `new.data ? 'identifier'` });
    let uid: string;
    try {
      const { challenge } = pkce();
      const answer = await browser.request(
        authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256', prompt: 'login' }),
      );
      expect(answer.status).toBe(303);
      uid = /^\/interaction\/([^/]+)$/.exec(answer.headers.get('location')!)![1]!;
      expect(answer.headers.getSetCookie().some((c) => c.startsWith(`akamon_interaction=${uid};`))).toBe(true);
      expect(akamon.logs.join('')).toContain('the first step is left to its own request');
      // Its own page meets the same fault: the busy page, with Retry-After.
      const busy = await browser.request(`/interaction/${uid}`);
      expect([busy.status, Number(busy.headers.get('retry-after')) > 0]).toEqual([503, true]);
    } finally {
      await stop();
    }
    const shown = await browser.visit(`/interaction/${uid}`);
    expect([shown.status, /name="password"/.test(shown.html), shown.html.includes(account.commonId)]).toEqual([200, true, true]);
  });

  test('a code is single-use: 20 concurrent redemptions give one token set and 19 invalid_grant', async () => {
    const account = await akamon.createReadyAccount();
    const result = await signIn(new Browser(akamon.url), akamon, client, account);
    const responses = await Promise.all(Array.from({ length: 20 }, () => redeem(akamon, client, result.code!, result.verifier)));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 400)).toHaveLength(19);
    for (const r of responses.filter((x) => x.status === 400)) expect(r.body.error).toBe('invalid_grant');
  });

  test('PKCE is required and checked', async () => {
    const browser = new Browser(akamon.url);
    const noPkce = await browser.visit(`${akamon.url}/auth?client_id=${client.clientId}&redirect_uri=${encodeURIComponent(client.redirectUri)}&response_type=code&scope=openid&state=s1`);
    expect(noPkce.url).toContain('error=invalid_request');
    const plain = await browser.visit(
      `${akamon.url}/auth?client_id=${client.clientId}&redirect_uri=${encodeURIComponent(client.redirectUri)}&response_type=code&scope=openid&code_challenge=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq&code_challenge_method=plain`,
    );
    expect(plain.url).toContain('error=invalid_request');
    const account = await akamon.createReadyAccount();
    const result = await signIn(new Browser(akamon.url), akamon, client, account);
    const wrong = await redeem(akamon, client, result.code!, 'x'.repeat(43));
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toBe('invalid_grant');
  });

  test('refresh tokens rotate, and reusing a rotated one revokes the grant', async () => {
    const account = await akamon.createReadyAccount();
    const result = await signIn(new Browser(akamon.url), akamon, client, account);
    const first = await redeem(akamon, client, result.code!, result.verifier);
    const second = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
    expect(second.status).toBe(200);
    expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
    // Past the retry grace: within it, this would be a retry of a lost answer (token-retry.test.ts).
    await pastRetryGrace(akamon, first.body.refresh_token);
    const reuse = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');
    const after = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: second.body.refresh_token });
    expect(after.body.error).toBe('invalid_grant');
  });

  test('introspection and revocation', async () => {
    const account = await akamon.createReadyAccount();
    const result = await signIn(new Browser(akamon.url), akamon, client, account);
    const tokens = await redeem(akamon, client, result.code!, result.verifier);
    const auth = { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' };
    const active = (await (await fetch(`${akamon.url}/token/introspection`, { method: 'POST', headers: auth, body: new URLSearchParams({ token: tokens.body.access_token }) })).json()) as Record<
      string,
      unknown
    >;
    expect(active).toMatchObject({ active: true, sub: account.id, client_id: client.clientId });
    const revoked = await fetch(`${akamon.url}/token/revocation`, { method: 'POST', headers: auth, body: new URLSearchParams({ token: tokens.body.access_token }) });
    expect(revoked.status).toBe(200);
    const inactive = (await (await fetch(`${akamon.url}/token/introspection`, { method: 'POST', headers: auth, body: new URLSearchParams({ token: tokens.body.access_token }) })).json()) as Record<
      string,
      unknown
    >;
    expect(inactive).toEqual({ active: false });
    const userinfo = await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } });
    expect(userinfo.status).toBe(401);
  });
});

describe("Akamon's own sites by name", () => {
  test('Japanese sign-in pages name the account home and the console in Japanese, also where a database registered them before the names existed', async () => {
    const clients = akamon.akamon.clients;
    // As a database from before the Japanese names: the account home registered without one.
    await clients.update(ACCOUNT_CLIENT_ID, { nameJa: null });
    // A node starting on that database (the same issuer) brings the registration up to date.
    await (await startAkamon({ share: akamon, env: { AKAMON_ISSUER: akamon.url } })).close();
    expect((await clients.show(ACCOUNT_CLIENT_ID)).nameJa).toBe('Akamon アカウント');
    expect((await clients.show(CONSOLE_CLIENT_ID)).nameJa).toBe('Akamon 管理コンソール');
    const browser = new Browser(akamon.url);
    browser.acceptLanguage = 'ja';
    for (const [site, name] of [
      ['/account', 'Akamon アカウント'],
      ['/console', 'Akamon 管理コンソール'],
    ]) {
      const login = await browser.visit(`${akamon.url}${site}/login`);
      expect(login.html).toContain('<html lang="ja">');
      expect(login.html).toContain('name="identifier"');
      expect(login.html).not.toMatch(/Akamon (account|console)/);
      expect(login.html.replace(/<wbr>/g, '')).toContain(name);
    }
  });
});

describe('sessions and prompts', () => {
  test('single sign-on, prompt=none, prompt=login and max_age', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const noSession = await startAuthorization(browser, akamon, client, { prompt: 'none' });
    expect(new URL(noSession.page.url).searchParams.get('error')).toBe('login_required');

    await signIn(browser, akamon, client, account);
    const silent = await startAuthorization(browser, akamon, client, { prompt: 'none' });
    expect(codeFrom(silent.page)).toBeTruthy();
    const sso = await startAuthorization(browser, akamon, client);
    expect(codeFrom(sso.page)).toBeTruthy();

    for (const params of [{ prompt: 'login' }, { max_age: '0' }] as Record<string, string>[]) {
      const again = await startAuthorization(browser, akamon, client, params);
      expect(again.page.html).toMatch(/name="password"/);
      expect(again.page.html).toContain(account.commonId);
      const done = await browser.submit(again.page, /\/password$/, { password: account.password });
      const tokens = await redeem(akamon, client, codeFrom(done), again.verifier);
      expect(tokens.status).toBe(200);
    }
    const silentMaxAge = await startAuthorization(browser, akamon, client, { prompt: 'none', max_age: '0' });
    expect(new URL(silentMaxAge.page.url).searchParams.get('error')).toBe('login_required');
  });

  test('the account picker lists accounts used in this browser; select_account shows it', async () => {
    const first = await akamon.createReadyAccount({ name: 'First Person' });
    const second = await akamon.createReadyAccount({ name: 'Second Person' });
    const browser = new Browser(akamon.url);
    await signIn(browser, akamon, client, first);
    const picker = await startAuthorization(browser, akamon, client, { prompt: 'select_account' });
    expect(picker.page.html).toContain('First Person');
    const other = await browser.submit(picker.page, /\/select$/, { account: 'other' });
    expect(other.html).toMatch(/name="identifier"/);
    const done = await enterCredentials(browser, other, second.commonId, second.password);
    const tokens = await redeem(akamon, client, codeFrom(done), picker.verifier);
    const claims = JSON.parse(Buffer.from(tokens.body.id_token.split('.')[1], 'base64url').toString());
    expect(claims.sub).toBe(second.id);

    const again = await startAuthorization(browser, akamon, client, { prompt: 'select_account' });
    expect(again.page.html).toContain('First Person');
    expect(again.page.html).toContain('Second Person');
    const same = await browser.submit(again.page, /\/select$/, { account: second.commonId });
    expect(codeFrom(same)).toBeTruthy();
  });

  test('a third-party client asks for consent; a first-party client does not', async () => {
    const third = await akamon.createClient({ name: 'Outside Service', firstParty: false });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, third);
    const consent = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(consent.html).toContain('Outside Service');
    expect(consent.html).toMatch(/name="decision"/);
    const denied = await browser.submit(consent, /\/decide$/, { decision: 'deny' });
    expect(new URL(denied.url).searchParams.get('error')).toBe('access_denied');

    const again = await startAuthorization(browser, akamon, third);
    const allowed = await browser.submit(again.page, /\/decide$/, { decision: 'approve' });
    expect(codeFrom(allowed)).toBeTruthy();
    const silent = await startAuthorization(browser, akamon, third, { prompt: 'none' });
    expect(codeFrom(silent.page)).toBeTruthy();
  });

  test('logout asks for confirmation, then ends the session', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    await signIn(browser, akamon, client, account);
    const confirm = await browser.visit(`${akamon.url}/session/end`);
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Yes, sign me out');
    expect(confirm.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const silentBefore = await startAuthorization(browser, akamon, client, { prompt: 'none' });
    expect(codeFrom(silentBefore.page)).toBeTruthy();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.html)![1];
    const done = await browser.visit(`${akamon.url}/session/end/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    expect(done.html).toContain('You are signed out');
    const silentAfter = await startAuthorization(browser, akamon, client, { prompt: 'none' });
    expect(new URL(silentAfter.page.url).searchParams.get('error')).toBe('login_required');
  });

  test('pairwise clients see a different, stable subject', async () => {
    const pairwise = await akamon.createClient({ name: 'Pairwise RP', pairwise: true, redirectUris: ['http://127.0.0.1:9/pairwise'] });
    const account = await akamon.createReadyAccount();
    const subs = [];
    for (let i = 0; i < 2; i += 1) {
      const result = await signIn(new Browser(akamon.url), akamon, pairwise, account);
      const tokens = await redeem(akamon, pairwise, result.code!, result.verifier);
      subs.push(JSON.parse(Buffer.from(tokens.body.id_token.split('.')[1], 'base64url').toString()).sub);
    }
    expect(subs[0]).toBe(subs[1]);
    expect(subs[0]).not.toBe(account.id);
  });
});
