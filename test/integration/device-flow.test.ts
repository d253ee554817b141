import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import * as client from 'openid-client';
import { generate } from 'otplib';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, decode, type Page } from '../support/browser.ts';
import { enterCredentials, signIn, tokenRequest } from '../support/flows.ts';
import { discover } from '../support/openid-rp.ts';
import { ACR_MFA } from '../../src/mfa/assurance.ts';
import { DEVICE_USER_CODE_GUESSES_EVERYONE, DEVICE_USER_CODE_GUESSES_PER_ADDRESS } from '../../src/config/defaults.ts';

// Issue 16 point 4: the device authorization grant (RFC 8628). openid-client 6 plays the device
// (a command-line tool, a public client) and polls while the test browser signs in at /device
// through the same steps as any authorization.

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

let akamon: RunningAkamon;
/** A command-line tool on the HPC login nodes: public, device grant only. */
let hpc: Awaited<ReturnType<RunningAkamon['createClient']>>;
let hpcConfig: client.Configuration;

beforeAll(async () => {
  // The guessing tests send codes from many addresses, as forwarded by a proxy on loopback.
  akamon = await startAkamon({ env: { AKAMON_TRUST_PROXY: 'true' } });
  hpc = await akamon.createClient({ name: 'HPC login', redirectUris: [], deviceFlow: true, public: true, firstParty: true });
  hpcConfig = await discover(akamon, hpc);
});
afterAll(() => akamon?.close());

const claimsOf = (idToken: string) => JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());

/** The device's side: a device authorization request, as openid-client makes it. */
const startDevice = (config = hpcConfig, scope = 'openid profile offline_access') => client.initiateDeviceAuthorization(config, { scope });

/** One poll of the token endpoint, as a device makes it (a public client: its client_id in the form). */
const poll = (deviceCode: string, clientId = hpc.clientId) => tokenRequest(akamon, { clientId, clientSecret: null }, { grant_type: DEVICE_GRANT, device_code: deviceCode });

/** The verification page, the code typed in, and the confirmation page it leads to. */
async function enterCode(browser: Browser, userCode: string): Promise<Page> {
  const form = await browser.visit('/device');
  expect(form.status).toBe(200);
  return browser.submit(form, /\/device$/, { user_code: userCode });
}

/** Code, confirmation and sign-in: the page the sign-in ends on. */
async function approve(browser: Browser, userCode: string, account: { commonId: string; password: string }): Promise<Page> {
  const confirm = await enterCode(browser, userCode);
  expect(confirm.html).toContain('Sign in on your device?');
  const signIn = await browser.submit(confirm, /\/device$/, { confirm: 'yes' });
  return /name="(identifier|password)"/.test(signIn.html) ? enterCredentials(browser, signIn, account.commonId, account.password) : signIn;
}

const deviceCodeRow = (deviceCode: string) =>
  akamon.deps.database.db.selectFrom('oidc_payload').select(['payload', 'consumed_at', 'grant_id']).where('model', '=', 'DeviceCode').where('id', '=', deviceCode).executeTakeFirst();

describe('the device authorization grant', () => {
  test("a public client's device request counts against its address's budget of records made without a sign-in", async () => {
    const budget = () =>
      akamon.deps.database.db
        .selectFrom('throttle')
        .select('locked_until')
        .where('key', '=', 'bucket:anonymous:127.0.0.1')
        .executeTakeFirst()
        .then((row) => new Date(row?.locked_until ?? 0).getTime());
    await startDevice();
    const before = await budget();
    await startDevice();
    expect(await budget()).toBeGreaterThan(before);
  });

  test('discovery names the endpoint and the grant; a client not registered for it is refused', async () => {
    const metadata = hpcConfig.serverMetadata();
    expect(metadata.device_authorization_endpoint).toBe(`${akamon.url}/device/auth`);
    expect(metadata.grant_types_supported).toContain(DEVICE_GRANT);
    const web = await akamon.createClient({ name: 'Web portal', redirectUris: ['http://127.0.0.1:9/portal'] });
    const refused = await fetch(`${akamon.url}/device/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${web.clientId}:${web.clientSecret}`).toString('base64')}` },
      body: new URLSearchParams({ scope: 'openid' }),
    });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: 'invalid_request', error_description: `${DEVICE_GRANT} is not allowed for this client` });
  });

  test('openid-client polls while the person signs in at /device: tokens for the account, the code typed in any case', async () => {
    const account = await akamon.createReadyAccount({ name: 'Taro Device' });
    const device = await startDevice();
    expect(device.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(device.verification_uri).toBe(`${akamon.url}/device`);
    expect(device.expires_in).toBe(600);
    const polling = client.pollDeviceAuthorizationGrant(hpcConfig, device);

    const browser = new Browser(akamon.url);
    // Lower case and without the dash: the same code.
    const confirm = await enterCode(browser, device.user_code.toLowerCase().replace('-', ''));
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('HPC login on another device asks to sign in');
    expect(confirm.html).toContain(`<code>${device.user_code}</code>`);
    const done = await enterCredentials(browser, await browser.submit(confirm, /\/device$/, { confirm: 'yes' }), account.commonId, account.password);
    expect(done.status).toBe(200);
    expect(done.html).toContain('You can return to your device');
    expect(done.html).toContain('You are signed in to HPC login.');

    const tokens = await polling;
    expect(tokens).toMatchObject({ token_type: 'bearer', access_token: expect.any(String), refresh_token: expect.any(String), id_token: expect.any(String) });
    expect(tokens.claims()).toMatchObject({ iss: akamon.url, aud: hpc.clientId, sub: account.id, amr: ['pwd'] });
    expect(tokens.scope?.split(' ').sort()).toEqual(['offline_access', 'openid', 'profile']);
    const userinfo = await client.fetchUserInfo(hpcConfig, tokens.access_token, account.id);
    expect(userinfo).toMatchObject({ sub: account.id, name: 'Taro Device', preferred_username: account.commonId });
    // A command-line tool keeps working with its refresh token.
    const refreshed = await client.refreshTokenGrant(hpcConfig, tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    const [logged] = await akamon.deps.signinLog.list({ accountId: account.id, limit: 1 });
    expect(logged).toMatchObject({ result: 'success', client_id: hpc.clientId });
  });

  test('polling answers in RFC 6749 JSON: authorization_pending, slow_down when too soon, then the tokens', async () => {
    const account = await akamon.createReadyAccount();
    const device = await startDevice();
    const pending = await poll(device.device_code);
    expect(pending.status).toBe(400);
    expect(pending.body).toEqual({ error: 'authorization_pending', error_description: expect.any(String) });
    expect(pending.headers.get('cache-control')).toContain('no-store');
    const tooSoon = await poll(device.device_code);
    expect(tooSoon.status).toBe(400);
    expect(tooSoon.body).toEqual({ error: 'slow_down', error_description: expect.any(String) });

    expect((await approve(new Browser(akamon.url), device.user_code, account)).html).toContain('You can return to your device');
    // Approved: the next poll gets the tokens, however soon it comes.
    const tokens = await poll(device.device_code);
    expect(tokens.status).toBe(200);
    expect(tokens.body).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String), refresh_token: expect.any(String), id_token: expect.any(String) });
  });

  test('a code is single-use: entered again it is "used", presented again it is a replay that revokes the grant', async () => {
    const account = await akamon.createReadyAccount();
    const device = await startDevice();
    await approve(new Browser(akamon.url), device.user_code, account);
    const first = await poll(device.device_code);
    expect(first.status).toBe(200);
    expect((await deviceCodeRow(device.device_code))?.consumed_at).not.toBeNull();

    const again = await enterCode(new Browser(akamon.url), device.user_code);
    expect(again.status).toBe(400);
    expect(again.html).toContain('That code has been used already.');

    // A public client's device code is all a thief needs: even past the first use's moment, a second
    // presentation gets no retry of a lost answer (token-retry.ts) and ends the grant.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const replayed = await poll(device.device_code);
    expect(replayed.status).toBe(400);
    expect(replayed.body.error).toBe('invalid_grant');
    const refreshed = await tokenRequest(akamon, { clientId: hpc.clientId, clientSecret: null }, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
    expect(refreshed.body.error).toBe('invalid_grant');
  });

  test('20 parallel polls after approval: exactly one token set, the others invalid_grant, no server error', async () => {
    const account = await akamon.createReadyAccount();
    const device = await startDevice();
    await approve(new Browser(akamon.url), device.user_code, account);
    const grantId = (await deviceCodeRow(device.device_code))!.grant_id!;
    const answers = await Promise.all(Array.from({ length: 20 }, () => poll(device.device_code)));
    const winners = answers.filter((a) => a.status === 200);
    expect(winners).toHaveLength(1);
    expect(winners[0].body.access_token).toEqual(expect.any(String));
    expect(answers.filter((a) => a.status !== 200).map((a) => [a.status, a.body.error])).toEqual(Array.from({ length: 19 }, () => [400, 'invalid_grant']));
    // Copies sent alongside the winner are a replay (token-retry.ts): as for a code, its grant is revoked with the set.
    const userinfo = await fetch(hpcConfig.serverMetadata().userinfo_endpoint!, { headers: { authorization: `Bearer ${winners[0].body.access_token}` } });
    expect(userinfo.status).toBe(401);
    expect(await akamon.deps.database.db.selectFrom('oidc_payload').select('model').where('grant_id', '=', grantId).execute()).toEqual([]);
    expect(akamon.logs.filter((line) => line.includes('"level":50'))).toEqual([]);
  });

  test('a fault while a device code is redeemed answers 503; the next poll gets the tokens (one unit of work)', async () => {
    const account = await akamon.createReadyAccount();
    const device = await startDevice();
    await approve(new Browser(akamon.url), device.user_code, account);
    // The database fails the next insert of an access token, once (a sequence: not rolled back with
    // the failed transaction), as a backend killed mid-request fails it.
    await sql
      .raw(`
      create sequence device_fault_count;
      create function fail_access_token_once() returns trigger language plpgsql as $$
      begin
        if nextval('device_fault_count') = 1 then raise exception 'injected fault' using errcode = '57P01'; end if;
        return new;
      end $$;
      create trigger fail_access_token_once before insert on oidc_payload for each row when (new.model = 'AccessToken') execute function fail_access_token_once();`)
      .execute(akamon.deps.database.db);
    const failed = await poll(device.device_code);
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(failed.body).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
    // Rolled back with the failed write: the code is not consumed, so the next poll is no replay.
    expect((await deviceCodeRow(device.device_code))?.consumed_at).toBeNull();
    const tokens = await poll(device.device_code);
    expect(tokens.status).toBe(200);
    await sql.raw('drop trigger fail_access_token_once on oidc_payload').execute(akamon.deps.database.db);
  });

  test('an expired code: the device hears expired_token, the page says it expired', async () => {
    const device = await startDevice();
    // As if its ten minutes had gone by: the provider reads the expiry in the payload.
    await akamon.deps.database.db
      .updateTable('oidc_payload')
      .set({ payload: sql`jsonb_set(payload, '{exp}', to_jsonb(extract(epoch from now())::bigint - 1))` } as never)
      .where('model', '=', 'DeviceCode')
      .where('id', '=', device.device_code)
      .execute();
    const expired = await poll(device.device_code);
    expect(expired.status).toBe(400);
    expect(expired.body).toEqual({ error: 'expired_token', error_description: expect.any(String) });
    const page = await enterCode(new Browser(akamon.url), device.user_code);
    expect(page.status).toBe(400);
    expect(page.html).toContain('That code has expired.');
    await expect(client.pollDeviceAuthorizationGrant(hpcConfig, { ...device, interval: 0.01 })).rejects.toMatchObject({ error: 'expired_token' });
  });

  test('cancel on the confirmation page: the device gets access_denied', async () => {
    const device = await startDevice();
    const browser = new Browser(akamon.url);
    const confirm = await enterCode(browser, device.user_code);
    const cancelled = await browser.submit(confirm, /\/device$/, { abort: 'yes' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.html).toContain('The sign-in was cancelled, and your device has been told.');
    const answer = await poll(device.device_code);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: 'access_denied', error_description: 'End-User aborted interaction' });
  });

  // Found by a protocol probe: without the confirmation's cookie the provider's own refusal failed with a 500.
  test('an old or stray /device/<id> address (nothing to resume) leads back to the code page, never a 500', async () => {
    for (const path of ['/device/auth', '/device/no-such-id', '/device/no-such-id/', '/DEVICE/no-such-id']) {
      const before = akamon.logs.length;
      const answer = await fetch(`${akamon.url}${path}`, { redirect: 'manual' });
      expect([path, answer.status, answer.headers.get('location')]).toEqual([path, 303, '/device']);
      expect(akamon.logs.slice(before).join('')).not.toContain('"level":50');
    }
    const page = await new Browser(akamon.url).visit(`${akamon.url}/device/no-such-id`);
    expect(page.status).toBe(200);
    expect(page.html).toContain('user_code');
  });

  test('the pages are in Japanese for a Japanese browser, with the language switch; a form without its CSRF token is refused', async () => {
    const account = await akamon.createReadyAccount();
    const device = await startDevice();
    const browser = new Browser(akamon.url);
    browser.acceptLanguage = 'ja';
    const page = await browser.visit('/device');
    expect(page.html).toContain('デバイスまたはターミナルに表示されたコードを入力してください。');
    expect(page.html).toContain('href="/lang?to=en&amp;back=%2Fdevice"');
    const forged = await browser.submit(page, /\/device$/, { user_code: device.user_code, xsrf: 'forged' });
    expect(forged.status).toBe(400);
    expect(forged.html).toContain('このページを開いてから時間が経ちすぎました。');

    const confirm = await browser.submit(forged, /\/device$/, { user_code: device.user_code });
    expect(confirm.html).toContain('別のデバイスの HPC login が、あなたの大学アカウントでのサインインを求めています。');
    // The switch on the confirmation page comes back to it, in the other language.
    const switched = await browser.visit(decode(/class="lang-switch" href="([^"]+)"/.exec(confirm.html)![1]));
    expect(switched.html).toContain('HPC login on another device asks to sign in');
    browser.acceptLanguage = 'en';
    browser.cookies.clear();
    const done = await enterCredentials(browser, await browser.submit(await enterCode(browser, device.user_code), /\/device$/, { confirm: 'yes' }), account.commonId, account.password);
    expect(done.html).toContain('You can return to your device');
    const japanese = new Browser(akamon.url);
    japanese.acceptLanguage = 'ja';
    const other = await startDevice();
    const doneJa = await enterCredentials(japanese, await japanese.submit(await enterCode(japanese, other.user_code), /\/device$/, { confirm: 'yes' }), account.commonId, account.password);
    expect(doneJa.html).toContain('デバイスに戻ってください');
  });
});

describe('the sign-in behind /device is the ordinary pipeline', () => {
  test('an initial password is changed first', async () => {
    const account = await akamon.createAccount();
    const device = await startDevice();
    const browser = new Browser(akamon.url);
    const change = await approve(browser, device.user_code, account);
    expect(change.html).toContain('Choose a new password');
    const next = 'Device-Flow-Pass-2031';
    const done = await browser.submit(change, /\/change$/, { current: account.password, new: next, confirm: next });
    expect(done.html).toContain('You can return to your device');
    expect((await poll(device.device_code)).status).toBe(200);
  });

  test('a client that demands MFA: the second factor is asked after the password, and the ID token says so', async () => {
    const gpu = await akamon.createClient({ name: 'GPU cluster', redirectUris: [], deviceFlow: true, public: true, firstParty: true, requireMfa: true });
    const account = await akamon.createReadyAccount();
    const { secret, sealed } = akamon.deps.mfa.pendingTotp();
    expect(await akamon.deps.mfa.confirmTotp(account.id, sealed, await generate({ secret }), 'Authenticator app')).toMatchObject({ ok: true });

    const device = await startDevice(await discover(akamon, gpu));
    const browser = new Browser(akamon.url);
    const verify = await approve(browser, device.user_code, account);
    expect(verify.html).toContain('Verify your identity');
    expect(verify.html).toContain('GPU cluster');
    const done = await browser.submit(verify, /\/totp$/, { code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }) });
    expect(done.html).toContain('You can return to your device');
    const tokens = await poll(device.device_code, gpu.clientId);
    expect(tokens.status).toBe(200);
    expect(claimsOf(tokens.body.id_token)).toMatchObject({ amr: ['pwd', 'otp'], acr: ACR_MFA });
    // Found by a protocol probe: the access token did not carry the sign-in's methods, so every use
    // of it at this client was judged as a sign-in without a factor.
    const userinfo = await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } });
    expect(userinfo.status).toBe(200);
    expect(((await userinfo.json()) as { sub: string }).sub).toBe(claimsOf(tokens.body.id_token).sub);
  });

  test("an account the client's rules refuse sees the 53003 page; leaving it, the device gets access_denied naming the rule", async () => {
    const staffOnly = await akamon.createClient({ name: 'Staff terminal', redirectUris: [], deviceFlow: true, public: true, firstParty: true, allowedAffiliations: ['staff'] });
    const student = await akamon.createReadyAccount({ affiliation: 'student' });
    const device = await startDevice(await discover(akamon, staffOnly));
    const browser = new Browser(akamon.url);
    const denied = await approve(browser, device.user_code, student);
    expect(denied.status).toBe(403);
    expect(denied.html).toContain('53003');
    expect(denied.html).toContain('your affiliation is not among them');
    const left = await browser.submit(denied, /\/leave$/, {});
    expect(left.html).toContain('The sign-in was cancelled, and your device has been told.');
    const answer = await poll(device.device_code, staffOnly.clientId);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: 'access_denied', error_description: 'the account is not allowed to use this system (affiliation_not_allowed)' });
    const [logged] = await akamon.deps.signinLog.list({ accountId: student.id, limit: 1 });
    expect(logged).toMatchObject({ result: 'failure', reason: 'access_denied.affiliation_not_allowed', client_id: staffOnly.clientId });
  });

  test('a third-party tool asks for consent first; the answer is the ordinary consent step', async () => {
    const lab = await akamon.createClient({ name: 'Lab cluster', redirectUris: [], deviceFlow: true, public: true, firstParty: false });
    const account = await akamon.createReadyAccount();
    const device = await startDevice(await discover(akamon, lab), 'openid profile');
    const browser = new Browser(akamon.url);
    const consent = await approve(browser, device.user_code, account);
    expect(consent.html).toContain('Allow access?');
    expect(consent.html).toContain('Lab cluster asks to use this information');
    const done = await browser.submit(consent, /\/decide$/, { decision: 'approve' });
    expect(done.html).toContain('You can return to your device');
    expect((await poll(device.device_code, lab.clientId)).status).toBe(200);
  });

  test('single sign-on: a browser already signed in confirms the code and is done without a password', async () => {
    const account = await akamon.createReadyAccount();
    const portal = await akamon.createClient({ name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal-sso'] });
    const browser = new Browser(akamon.url);
    await signIn(browser, akamon, portal, account);
    const device = await startDevice();
    const done = await approve(browser, device.user_code, { commonId: 'unused', password: 'unused' });
    expect(done.html).toContain('You can return to your device');
    const tokens = await poll(device.device_code);
    expect(claimsOf(tokens.body.id_token).sub).toBe(account.id);
  });
});

describe('guessing user codes', () => {
  const clearBudgets = () => sql`delete from throttle where key like 'bucket:device_user_code:%'`.execute(akamon.deps.database.db);
  afterAll(clearBudgets);
  /** The code page, as a browser gets it: a busy answer (503 on a loaded machine) is tried again, a few times. */
  const codePage = async (browser: Browser): Promise<Page> => {
    let page = await browser.visit('/device');
    for (let tries = 1; page.status === 503 && tries < 20; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      page = await browser.visit('/device');
    }
    return page;
  };
  /** When a budget of wrong codes is full again (its row's locked_until), or undefined: never used. */
  const budgetFullAt = (who: 'everyone' | '127.0.0.1') =>
    akamon.deps.database.db
      .selectFrom('throttle')
      .select('locked_until')
      .where('key', '=', `bucket:device_user_code:${who}`)
      .executeTakeFirst()
      .then((row) => row?.locked_until && new Date(row.locked_until).getTime());
  const everyonesBudget = () => budgetFullAt('everyone');

  test('wrong codes from one address: 400 with the reason, then 429 with Retry-After in ja/en, even for a right code', async () => {
    await clearBudgets();
    const browser = new Browser(akamon.url);
    let page = await browser.visit('/device');
    for (let i = 0; i < DEVICE_USER_CODE_GUESSES_PER_ADDRESS.burst; i += 1) {
      page = await browser.submit(page, /\/device$/, { user_code: 'ZZZZ-ZZZZ' });
      expect([page.status, page.html.includes('That code is not right.')]).toEqual([400, true]);
    }
    const device = await startDevice();
    const limited = await browser.submit(page, /\/device$/, { user_code: device.user_code });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.html).toContain('Too many wrong codes were entered. Wait 1 minute, then try again.');
    // Every spelling of the path the provider answers is behind the limit.
    const shouted = await browser.request('/DEVICE/', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ user_code: device.user_code }) });
    expect(shouted.status).toBe(429);
    browser.acceptLanguage = 'ja';
    const japanese = await browser.submit(page, /\/device$/, { user_code: device.user_code });
    expect(japanese.status).toBe(429);
    expect(japanese.html).toContain('誤ったコードの入力が多すぎます。');
    expect(akamon.logs.some((line) => line.includes('"event":"device.user_code_limited"'))).toBe(true);
    // The code itself is untouched: once the budget refills it still works.
    await clearBudgets();
    expect((await enterCode(new Browser(akamon.url), device.user_code)).html).toContain('Sign in on your device?');
  });

  test('a code that was found costs nothing: the same address enters right codes as often as it likes', async () => {
    await clearBudgets();
    const device = await startDevice();
    const browser = new Browser(akamon.url);
    for (let i = 0; i < DEVICE_USER_CODE_GUESSES_PER_ADDRESS.burst + 5; i += 1) expect((await enterCode(browser, device.user_code)).status).toBe(200);
  });

  test('wrong codes from many addresses use up the global budget; a right code from a fresh address is still confirmed and approved', async () => {
    await clearBudgets();
    const perAddress = DEVICE_USER_CODE_GUESSES_PER_ADDRESS.burst;
    const everyone = DEVICE_USER_CODE_GUESSES_EVERYONE.burst;
    const from = (address: string) => Object.assign(new Browser(akamon.url), { extraHeaders: { 'x-forwarded-for': address } });
    const account = await akamon.createReadyAccount();
    const device = await startDevice();
    // Enough addresses, all at once, each sending exactly its own budget of wrong codes: the global one runs out.
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: Math.ceil(everyone / perAddress) + 1 }, async (_, a) => {
        const browser = from(`192.0.2.${a + 1}`);
        let form = await codePage(browser);
        const pages: Page[] = [];
        for (let i = 0; i < perAddress; i += 1) {
          const page = await browser.submit(form, /\/device$/, { user_code: 'ZZZZ-ZZZZ' });
          pages.push(page);
          // Every answer of the provider renews the form's token. A page without the form (429,
          // 503) sends the person back, and the code page, never cached, comes fresh.
          form = page.status === 400 ? page : await codePage(browser);
        }
        return pages;
      }),
    ).then((lists) => lists.flat());
    const notRight = answers.filter((page) => page.status === 400 && page.html.includes('That code is not right.'));
    const limited = answers.filter((page) => page.status === 429);
    // On a loaded machine a request may wait past the database's acquire timeout: that is the busy
    // page, 503 with Retry-After, nothing checked or counted. Anything else is named here.
    const busy = answers.filter((page) => page.status === 503 && Number(page.headers.get('retry-after')) > 0);
    const other = answers.filter((page) => ![notRight, limited, busy].some((kind) => kind.includes(page)));
    expect(other.map((page) => `${page.status} ${/<h1[^>]*>([^<]*)/.exec(page.html)?.[1] ?? ''} ${/<p class="lead">([^<]*)/.exec(page.html)?.[1] ?? ''}`)).toEqual([]);
    // Each miss is charged in one atomic statement, so however many run in parallel exactly the
    // global budget is answered "not right" (plus what refilled meanwhile, one every refillSeconds).
    expect(notRight.length).toBeGreaterThanOrEqual(everyone);
    expect(notRight.length).toBeLessThanOrEqual(everyone + Math.ceil((Date.now() - started) / 1000 / DEVICE_USER_CODE_GUESSES_EVERYONE.refillSeconds));
    // No address went past its own budget: every 429 is everyone's budget refusing a miss.
    expect(limited.length).toBeGreaterThan(0);
    expect(Number(limited[0].headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited[0].html).toContain('Too many wrong codes were entered.');
    expect(akamon.logs.some((line) => line.includes('"event":"device.user_code_limited"') && line.includes('"budget":"everyone"'))).toBe(true);

    // A right code from a fresh address, at once: confirmed and approved, the device gets its
    // tokens, and nothing was taken from everyone's budget.
    const before = await everyonesBudget();
    const done = await approve(from('198.51.100.2'), device.user_code, account);
    expect(done.html).toContain('You can return to your device');
    expect((await poll(device.device_code)).status).toBe(200);
    expect(await everyonesBudget()).toBe(before);
  });

  test("a form refused before its code is looked up (its token is stale) is no guess: neither the address's budget nor everyone's is charged", async () => {
    await clearBudgets();
    const addressBudget = () => budgetFullAt('127.0.0.1');
    const browser = new Browser(akamon.url);
    const first = await browser.visit('/device');
    const wrong = await browser.submit(first, /\/device$/, { user_code: 'ZZZZ-ZZZZ' });
    expect(wrong.status).toBe(400);
    const [charged, guessed] = [await everyonesBudget(), await addressBudget()];
    expect([charged, guessed].every((at) => Number(at) > 0)).toBe(true);
    // The first page's token was renewed by the answer: as a person pressing Back without reloading.
    const stale = await browser.submit(first, /\/device$/, { user_code: 'ZZZZ-ZZZZ' });
    expect([stale.status, stale.html.includes('This page was open too long.')]).toEqual([400, true]);
    expect([await everyonesBudget(), await addressBudget()]).toEqual([charged, guessed]);
  });
});
