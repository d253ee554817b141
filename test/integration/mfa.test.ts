import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { generate } from 'otplib';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { chooseMethod, codeFrom, enterCredentials, finishEnrolment, freshTotpStep, redeem, secretOn, startAuthorization } from '../support/flows.ts';
import { ACR_MFA, ACR_PASSWORD, ACR_PHISHING_RESISTANT } from '../../src/mfa/assurance.ts';
import { mailedCode } from '../support/smtp-sink.ts';
import { inRequestMemo } from '../../src/shared/request-memo.ts';
import { TokenStore } from '../../src/mfa/token.store.ts';

let akamon: RunningAkamon;
let plain: Awaited<ReturnType<RunningAkamon['createClient']>>;
let vpn: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  plain = await akamon.createClient({ name: 'Library', redirectUris: ['http://127.0.0.1:9/library'] });
  vpn = await akamon.createClient({ name: 'UTokyo VPN', requireMfa: true, redirectUris: ['http://127.0.0.1:9/vpn'] });
});
afterAll(() => akamon.close());

const claimsOf = (idToken: string) => JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());
/** A code for a given moment; distinct moments 30 s apart give distinct time steps. */
const totpAt = (secret: string, offsetSteps = 0) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + offsetSteps * 30 });

async function enrolled(browser = new Browser(akamon.url)) {
  const account = await akamon.createReadyAccount();
  const started = await startAuthorization(browser, akamon, vpn);
  const enroll = await enterCredentials(browser, started.page, account.commonId, account.password);
  expect(enroll.html).toContain('More information required');
  const app = await chooseMethod(browser, enroll);
  const secret = secretOn(app);
  const done = await finishEnrolment(browser, akamon, await browser.submit(app, /\/totp$/, { code: await totpAt(secret) }));
  const tokens = await redeem(akamon, vpn, codeFrom(done), started.verifier);
  return { account, secret, browser, tokens };
}

/** A new browser's sign-in at the VPN, up to "Verify your identity" (the account has a factor). */
async function atVerification(account: { commonId: string; password: string }) {
  const browser = new Browser(akamon.url);
  const started = await startAuthorization(browser, akamon, vpn);
  const page = await enterCredentials(browser, started.page, account.commonId, account.password);
  expect(page.html).toContain('Verify your identity');
  return { browser, started, page };
}

describe('enrolment at a client that demands MFA', () => {
  test('asks which method first, then shows a QR code, the key and the link for this phone, and saves the app only after a valid code; the ID token says otp', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    const enroll = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(enroll.html).toContain('More information required');
    expect(enroll.html).toContain('Which method would you like to set up?');
    // The authenticator app comes first, recommended and chosen; a first set-up offers no email (it follows anyway).
    expect([...enroll.html.matchAll(/name="method" value="([a-z]+)"/g)].map((m) => m[1])).toEqual(['app', 'key', 'phone']);
    expect(enroll.html).toMatch(/value="app" aria-describedby="method-app-hint" checked/);
    expect(enroll.html).not.toContain('class="qr"');
    const unknown = await browser.submit(enroll, /\/choose$/, { method: 'carrier-pigeon' });
    expect(unknown.status).toBe(400);
    expect(unknown.html).toContain('Choose one of the methods.');

    const app = await chooseMethod(browser, unknown);
    expect(app.html).toMatch(/<img class="qr" src="data:image\/svg\+xml;base64,/);
    const secret = secretOn(app);
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
    // The link that hands the account to the authenticator app on this device carries the same secret.
    const link = /href="(otpauth:\/\/totp\/[^"]+)"/.exec(app.html)![1].replace(/&amp;/g, '&');
    expect(new URL(link).searchParams.get('secret')).toBe(secret);
    // Only this method's page: no security key or phone forms on it.
    expect(app.html).not.toContain('webauthn-options');
    expect(app.html).not.toContain('name="phone"');

    const wrong = await browser.submit(app, /\/totp$/, { code: '000000' });
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('That code is not correct');
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(0);
    // The same key is offered again: the pending secret lives in the interaction, not in the form.
    expect(secretOn(wrong)).toBe(secret);

    const done = await finishEnrolment(browser, akamon, await browser.submit(wrong, /\/totp$/, { code: await totpAt(secret) }));
    const tokens = await redeem(akamon, vpn, codeFrom(done), started.verifier);
    expect(tokens.status).toBe(200);
    const claims = claimsOf(tokens.body.id_token);
    expect(claims.amr).toEqual(['pwd', 'otp']);
    expect(claims.acr).toBe(ACR_MFA);
    const factors = await akamon.deps.mfa.factors(account.id);
    expect(factors.map((f) => [f.kind, f.is_default])).toEqual([['totp', true]]);
    expect(factors[0].secret_enc).not.toContain(secret);
    const audit = (await akamon.deps.audit.list({ accountId: account.id, limit: 10 })).find((e) => e.action === 'mfa.enrolled')!;
    expect(audit).toMatchObject({ actor: 'self', details: { kind: 'totp', label: 'Authenticator app' } });
    expect(JSON.stringify(audit.details)).not.toContain(secret);
  });

  test('a forged or malformed security-key answer is refused and stores nothing', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    const enroll = await chooseMethod(browser, await enterCredentials(browser, started.page, account.commonId, account.password), 'key');
    expect(enroll.html).toContain('type="application/json" id="webauthn-options"');
    const options = JSON.parse(/id="webauthn-options">([^<]+)<\/script>/.exec(enroll.html)![1]);
    expect(options).toMatchObject({ rp: { id: '127.0.0.1' }, authenticatorSelection: { userVerification: 'required' } });
    for (const credential of ['not json', '{"id":"x","rawId":"x","type":"public-key","response":{}}', JSON.stringify({ id: 'a'.repeat(20000) })]) {
      const refused = await browser.submit(enroll, /\/webauthn$/, { credential });
      expect([400, 413]).toContain(refused.status);
    }
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(0);
  });

  test('after the factor: a recovery email confirmed by a mailed code, an optional app password, then the system', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    const enroll = await chooseMethod(browser, await enterCredentials(browser, started.page, account.commonId, account.password));
    expect(enroll.html).toContain('Step 1 of 3');
    const recovery = await browser.submit(enroll, /\/totp$/, { code: await totpAt(secretOn(enroll)) });
    expect(recovery.html).toContain('Add a recovery email');
    expect(recovery.html).toContain('Step 2 of 3');
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(1);

    const email = `hanako.${account.commonId}@example.com`;
    // The new factor's notice (src/notice/) goes out in the background: let it, so the refusal below meets the code mail.
    await akamon.deps.notices.settled();
    akamon.smtp.failNext(1);
    const down = await browser.submit(recovery, /\/email_send$/, { email });
    expect(down.status).toBe(503);
    expect(down.html).toContain('could not be sent just now');
    const sent = await browser.submit(down, /\/email_send$/, { email });
    expect(sent.html).toContain(`was sent to ${email}`);
    const mail = akamon.mails.at(-1)!;
    expect(mail.to).toEqual([email]);
    const code = mailedCode(akamon.mails, email);
    const wrong = await browser.submit(sent, /\/email_confirm$/, { code: code === '000000' ? '111111' : '000000' });
    expect(wrong.status).toBe(400);
    const appPasswordPage = await browser.submit(wrong, /\/email_confirm$/, { code });
    expect(appPasswordPage.html).toContain('App password (optional)');
    expect(appPasswordPage.html).toContain('Step 3 of 3');
    const row = await akamon.deps.accounts.findById(account.id);
    expect(row).toMatchObject({ recovery_email: email });
    expect(row!.recovery_email_verified_at).not.toBeNull();

    const withAppPassword = await browser.submit(appPasswordPage, /\/app_password$/, { name: 'Mail on my laptop' });
    expect(withAppPassword.html).toContain('Your security info is set up');
    expect(withAppPassword.html).toContain(email);
    expect(withAppPassword.html).toContain('href="/services"');
    expect(withAppPassword.html).toMatch(/<code>[a-z]{4}( [a-z]{4}){4}<\/code>/);
    expect(await akamon.deps.appPasswords.list(account.id)).toEqual([expect.objectContaining({ name: 'Mail on my laptop' })]);
    const done = await browser.submit(withAppPassword, /\/finish$/, {});
    const tokens = await redeem(akamon, vpn, codeFrom(done), started.verifier);
    expect(claimsOf(tokens.body.id_token).amr).toEqual(['pwd', 'otp']);
    // The mail has a plain-text part and never the recovery address of anyone else.
    expect(mail.raw).toMatch(/Content-Type: text\/plain/i);
  });

  test('the recovery email and finish steps cannot be reached without proving a factor first', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    const enroll = await enterCredentials(browser, started.page, account.commonId, account.password);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(enroll.html)![1];
    const base = new URL(enroll.url).pathname;
    for (const action of ['email_send', 'finish', 'app_password']) {
      const response = await browser.request(`${akamon.url}${base}/${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrf, email: 'x@example.com', name: 'x' }),
      });
      expect(response.status).toBe(303);
      expect(response.headers.get('location')).toBe(base);
    }
    expect(await akamon.deps.appPasswords.list(account.id)).toHaveLength(0);
    expect((await akamon.deps.accounts.findById(account.id))!.recovery_email).toBeNull();
  });

  test('leaving halfway stores no factor', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    const enroll = await chooseMethod(browser, await enterCredentials(browser, started.page, account.commonId, account.password));
    const left = await browser.submit(enroll, /\/abort$/, {});
    expect(new URL(left.url).searchParams.get('error')).toBe('access_denied');
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(0);
    // Coming back later starts the enrolment again, with a new key.
    const again = await startAuthorization(browser, akamon, vpn);
    expect(again.page.html).toContain('More information required');
    expect(secretOn(await chooseMethod(browser, again.page))).not.toBe(secretOn(enroll));
  });

  test('prompt=none at the MFA client with a password-only session gives interaction_required', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const first = await startAuthorization(browser, akamon, plain);
    const done = await enterCredentials(browser, first.page, account.commonId, account.password);
    expect(claimsOf((await redeem(akamon, plain, codeFrom(done), first.verifier)).body.id_token).acr).toBe(ACR_PASSWORD);
    const silent = await startAuthorization(browser, akamon, vpn, { prompt: 'none' });
    expect(new URL(silent.page.url).searchParams.get('error')).toBe('interaction_required');
    expect(new URL(silent.page.url).searchParams.get('code')).toBeNull();
  });
});

describe('verification', () => {
  test('step-up through SSO: a password-only session is asked for a code at the MFA client only', async () => {
    const { account, secret } = await enrolled();
    const browser = new Browser(akamon.url);
    const atLibrary = await startAuthorization(browser, akamon, plain);
    const libraryDone = await enterCredentials(browser, atLibrary.page, account.commonId, account.password);
    expect(claimsOf((await redeem(akamon, plain, codeFrom(libraryDone), atLibrary.verifier)).body.id_token).amr).toEqual(['pwd']);

    const atVpn = await startAuthorization(browser, akamon, vpn);
    expect(atVpn.page.html).toContain('Verify your identity');
    expect(atVpn.page.html).toContain('UTokyo VPN');
    // "I can't use any of these": the ways back in, and back to the verification.
    const help = await browser.visit(`${akamon.url}${/href="([^"]+)">I can&#39;t use any of these methods/.exec(atVpn.page.html)![1].replace(/&amp;/g, '&')}`);
    expect(help.html).toContain('Ask the account office');
    const verifyAgain = await browser.visit(`${akamon.url}${/href="([^"]+)">Back to the verification/.exec(help.html)![1]}`);
    expect(verifyAgain.html).toContain('UTokyo VPN');
    const verified = await browser.submit(verifyAgain, /\/totp$/, { code: await totpAt(secret, 1) });
    const claims = claimsOf((await redeem(akamon, vpn, codeFrom(verified), atVpn.verifier)).body.id_token);
    expect(claims.amr).toEqual(['pwd', 'otp']);
    expect(claims.acr).toBe(ACR_MFA);
    // Now the session has MFA: SSO to the VPN needs nothing more, also with prompt=none.
    const again = await startAuthorization(browser, akamon, vpn, { prompt: 'none' });
    expect(codeFrom(again.page)).toBeTruthy();
  });

  test('the password asks for the second factor itself, on its own answer: no session until the factor, one trip through the provider, the sign-in dated by the password', async () => {
    const { account, secret } = await enrolled();
    const db = akamon.deps.database.db;
    const sessions = () => db.selectFrom('oidc_payload').select('payload').where('model', '=', 'Session').where('account_id', '=', account.id).execute();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    const uid = new URL(started.page.url).pathname.split('/')[2]!;
    const before = await sessions();
    const passwordPage = await browser.submit(started.page, /\/identifier$/, { identifier: account.commonId });
    // The password's answer is the factor's page itself: no redirect, no resume in between, no session
    // yet; it gives the browser the interaction's own address, so a reload sends no password.
    const sent = browser.form(passwordPage, /\/password$/, { password: account.password });
    const answer = await browser.request(sent.url, { method: 'POST', body: sent.body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const step = { status: answer.status, url: `${akamon.url}/interaction/${uid}`, html: await answer.text(), headers: answer.headers };
    expect([step.status, step.html.includes('Verify your identity')]).toEqual([200, true]);
    expect(step.html).toContain(`<script src="/static/page-url.js" nonce="`);
    expect(step.html).toContain(`data-url="/interaction/${uid}" defer></script>`);
    expect(await sessions()).toEqual(before);
    const shownAgain = await browser.visit(`${akamon.url}/interaction/${uid}`);
    expect([shownAgain.status, shownAgain.html.includes('Verify your identity'), shownAgain.html.includes('page-url.js')]).toEqual([200, true, false]);
    // The password's form sent again (a double click) checks nothing and lands on the same page.
    const again = await browser.submit(passwordPage, /\/password$/, { password: 'not-checked-again' });
    expect([again.url, again.html.includes('Verify your identity')]).toEqual([`${akamon.url}/interaction/${uid}`, true]);
    // The session's lifetime will run from the password: dated back here, as if the factor took a while.
    const signedAt = Math.floor(Date.now() / 1000) - 600;
    await db
      .updateTable('interaction_state')
      .set({ data: sql`jsonb_set(data, '{passwordResult,result,sign_in,at}', ${String(signedAt)}::jsonb)` })
      .where('uid', '=', uid)
      .execute();
    const done = await browser.submit(step, /\/totp$/, { code: await totpAt(secret, 1) });
    const claims = claimsOf((await redeem(akamon, vpn, codeFrom(done), started.verifier)).body.id_token);
    expect([claims.amr, claims.acr]).toEqual([['pwd', 'otp'], ACR_MFA]);
    const [made] = (await sessions()).filter((row) => !before.some((old) => old.payload.jti === row.payload.jti));
    expect(made!.payload.signedInAt).toBe(signedAt);
  });

  test('a password proven at the factor page does not outlast a sign-out everywhere: the password is asked again, and no session is made', async () => {
    // The last code is the previous step's: the step must not change after the enrolment's code.
    await freshTotpStep();
    const { account, secret } = await enrolled();
    const { browser, page: step } = await atVerification(account);
    // Signed out everywhere (another device, the help desk) after the password: dated a few seconds
    // back, as a password of the ending's own second counts as after it (as a session's sign-in does).
    const uid = new URL(step.url).pathname.split('/')[2]!;
    await akamon.deps.database.db
      .updateTable('interaction_state')
      .set({ data: sql`jsonb_set(data, '{passwordResult,result,sign_in,at}', to_jsonb((data #>> '{passwordResult,result,sign_in,at}')::bigint - 5))` })
      .where('uid', '=', uid)
      .execute();
    await akamon.deps.payloads.revokeAccount(account.id);
    const sent = await browser.submit(step, /\/totp$/, { code: await totpAt(secret, 1) });
    expect([sent.status, sent.url, sent.html.includes('Enter your password')]).toEqual([200, `${akamon.url}/interaction/${uid}`, true]);
    const made = await akamon.deps.database.db.selectFrom('oidc_payload').select('id').where('model', '=', 'Session').where('account_id', '=', account.id).execute();
    expect(made).toEqual([]);
    // The password again, then the factor: signed in.
    const verify = await browser.submit(sent, /\/password$/, { password: account.password });
    expect(verify.html).toContain('Verify your identity');
    expect(codeFrom(await browser.submit(verify, /\/totp$/, { code: await totpAt(secret, -1) }))).toBeTruthy();
  });

  test("a password's result is only for the Common ID it proved, and the factor's forms need one", async () => {
    const { account } = await enrolled();
    const other = await enrolled();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    // Before any password, a factor's form goes back to the page, which asks for the identifier.
    const early = await browser.submit(started.page, /\/identifier$/, { identifier: account.commonId });
    const { url } = browser.form(early, /\/password$/, {});
    const stale = await browser.visit(url.replace(/\/password$/, '/totp'), {
      method: 'POST',
      body: new URLSearchParams({ _csrf: browser.form(early, /\/password$/, {}).body.get('_csrf')!, code: '123456' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect([stale.status, stale.html.includes('Enter your password')]).toEqual([200, true]);
    const step = await browser.submit(stale, /\/password$/, { password: account.password });
    expect(step.html).toContain('Verify your identity');
    // Another Common ID sent to this interaction (say, from a second tab's identifier page): its own password page, and the first account's factor page is gone.
    const otherPassword = await browser.visit(url.replace(/\/password$/, '/identifier'), {
      method: 'POST',
      body: new URLSearchParams({ _csrf: browser.form(step, /\/totp$/, {}).body.get('_csrf')!, identifier: other.account.commonId }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(otherPassword.html).toContain('Enter your password');
    expect(otherPassword.html).toContain(other.account.commonId);
    const shown = await browser.visit(started.page.url);
    expect([shown.html.includes('Enter your password'), shown.html.includes('Verify your identity')]).toEqual([true, false]);
  });

  test('a second-factor step whose sign-in session was ended meanwhile is gone, also when requests in flight wrote its rows back', async () => {
    const { account, secret } = await enrolled();
    const rowsOf = (interaction: string) =>
      akamon.deps.database.db
        .selectFrom('oidc_payload')
        .selectAll()
        .where((eb) => eb.or([eb.and([eb('model', '=', 'Session'), eb('account_id', '=', account.id)]), eb.and([eb('model', '=', 'Interaction'), eb('id', '=', interaction)])]))
        .execute();
    // Requests in flight write back the interaction alone, or the interaction and the session.
    for (const writtenBack of [['Interaction'], ['Interaction', 'Session']]) {
      // A password-only session from a client that does not ask for MFA, stepping up at one that does.
      const browser = new Browser(akamon.url);
      const atLibrary = await startAuthorization(browser, akamon, plain);
      await enterCredentials(browser, atLibrary.page, account.commonId, account.password);
      const { page: step } = await startAuthorization(browser, akamon, vpn);
      expect(step.html).toContain('Verify your identity');
      const interactionId = new URL(step.url).pathname.split('/')[2]!;
      const before = await rowsOf(interactionId);
      // Signed out everywhere (another device, the help desk) while this page is open: the session
      // goes, and the interaction with it (it records the sign-in's grant).
      await akamon.deps.payloads.revokeAccount(account.id);
      expect(await rowsOf(interactionId)).toEqual([]);
      // Written back as they were; the sign-in is dated a few seconds earlier, as a session that began
      // in the same second as the sign-out counts as begun after it.
      const back = before
        .filter((row) => writtenBack.includes(row.model))
        .map((row) => ({ ...row, payload: JSON.stringify(row.model === 'Session' ? { ...row.payload, signedInAt: Number(row.payload.signedInAt) - 5 } : row.payload) }));
      expect(back.map((row) => row.model).sort()).toEqual(writtenBack);
      await akamon.deps.database.db
        .insertInto('oidc_payload')
        .values(back as never)
        .execute();
      const page = await browser.visit(step.url);
      expect([page.status, page.html.includes('This sign-in page has expired')]).toEqual([400, true]);
      const sent = await browser.submit(step, /\/totp$/, { code: await totpAt(secret, writtenBack.length === 1 ? -1 : 1) });
      expect([sent.status, sent.html.includes('This sign-in page has expired')]).toEqual([400, true]);
    }
  });

  test('a TOTP time step works once per account; one step of drift is accepted, two are not', async () => {
    // The test reads the clock once: it must not cross a step boundary before its last check.
    await freshTotpStep();
    const { account, secret } = await enrolled();
    const codeFor = (step: number) => generate({ secret, epoch: step * 30 });
    // The enrolment consumed its code's step: that code never works again.
    const [used] = await akamon.deps.database.db.selectFrom('totp_step').select('step').where('account_id', '=', account.id).execute();
    const enrolStep = Number(used.step) / 30; // stored as the step's start time
    expect(await akamon.deps.mfa.verifyTotp(account.id, await codeFor(enrolStep))).toEqual({ ok: false, reason: 'replayed' });
    const now = Math.floor(Date.now() / 1000 / 30);
    const [first, second] = [now - 1, now, now + 1].filter((s) => s !== enrolStep);
    expect((await akamon.deps.mfa.verifyTotp(account.id, await codeFor(first))).ok).toBe(true);
    expect(await akamon.deps.mfa.verifyTotp(account.id, await codeFor(first))).toEqual({ ok: false, reason: 'replayed' });
    // Grouped as apps show it, with spaces around: still the code.
    expect((await akamon.deps.mfa.verifyTotp(account.id, ` ${(await codeFor(second)).replace(/(\d{3})/, '$1 ')} `)).ok).toBe(true);
    expect(await akamon.deps.mfa.verifyTotp(account.id, await codeFor(now - 2))).toEqual({ ok: false, reason: 'wrong_code' });
    expect(await akamon.deps.mfa.verifyTotp(account.id, await codeFor(now + 2))).toEqual({ ok: false, reason: 'wrong_code' });
  });

  test('one code submitted ten times at once is accepted once', async () => {
    const { account, secret } = await enrolled();
    const code = await totpAt(secret, 1);
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => akamon.deps.mfa.verifyTotp(account.id, code)));
    expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
  });

  test("another account's code is refused", async () => {
    const one = await enrolled();
    const other = await enrolled();
    expect(await akamon.deps.mfa.verifyTotp(one.account.id, await totpAt(other.secret, 1))).toEqual({ ok: false, reason: 'wrong_code' });
  });

  test("a right code after wrong ones ends the method's count and marks the factor used, in a sign-in step and outside one", async () => {
    // Three distinct time steps (enrolment, sign-in, the direct check) within the drift of one.
    await freshTotpStep();
    const { account, secret } = await enrolled();
    const db = akamon.deps.database.db;
    const countRow = () => db.selectFrom('throttle').select(['failures', 'pending']).where('key', '=', `mfa:totp:${account.id}`).executeTakeFirst();
    const lastUsed = async () => (await db.selectFrom('mfa_factor').select('last_used_at').where('account_id', '=', account.id).executeTakeFirstOrThrow()).last_used_at;
    await db.updateTable('mfa_factor').set({ last_used_at: null }).where('account_id', '=', account.id).execute();
    let { browser, page } = await atVerification(account);
    for (let i = 0; i < 2; i += 1) page = await browser.submit(page, /\/totp$/, { code: String(200000 + i) });
    expect(await countRow()).toEqual({ failures: 2, pending: 0 });
    // The step's writes (the count's end, the factor's use) go out with the statement that ends its turn.
    const verified = await browser.submit(page, /\/totp$/, { code: await totpAt(secret, 1) });
    expect(codeFrom(verified)).toBeTruthy();
    expect(await countRow()).toBeUndefined();
    expect(await lastUsed()).toEqual(expect.any(Date));
    // Outside a step (a direct verification), they are written at once.
    await db.updateTable('mfa_factor').set({ last_used_at: null }).where('account_id', '=', account.id).execute();
    expect((await akamon.deps.mfa.verifyTotp(account.id, 'nope')).ok).toBe(false);
    expect((await akamon.deps.mfa.verifyTotp(account.id, await totpAt(secret, -1))).ok).toBe(true);
    expect(await countRow()).toBeUndefined();
    expect(await lastUsed()).toEqual(expect.any(Date));
  });

  test('wrong codes lock the method with a clear message, and the right code is refused meanwhile', async () => {
    const { account, secret } = await enrolled();
    let { browser, page } = await atVerification(account);
    for (let i = 0; i < 5; i += 1) page = await browser.submit(page, /\/totp$/, { code: String(100000 + i) });
    const locked = await browser.submit(page, /\/totp$/, { code: await totpAt(secret, 1) });
    expect(locked.status).toBe(429);
    expect(locked.html).toMatch(/Too many wrong codes\. Wait \d+ minute/);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  test('acr_values asking for MFA is honoured at any client', async () => {
    const { account, secret } = await enrolled();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, plain, { acr_values: ACR_MFA });
    const page = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(page.html).toContain('Verify your identity');
    const done = await browser.submit(page, /\/totp$/, { code: await totpAt(secret, 1) });
    expect(claimsOf((await redeem(akamon, plain, codeFrom(done), started.verifier)).body.id_token).acr).toBe(ACR_MFA);
  });

  test('a client with --mfa-max-age asks again once the second factor is older than that', async () => {
    const strict = await akamon.createClient({ name: 'Wi-Fi account menu', requireMfa: true, mfaMaxAge: 300, redirectUris: ['http://127.0.0.1:9/wifi'] });
    const { browser } = await enrolled();
    const fresh = await startAuthorization(browser, akamon, strict, { prompt: 'none' });
    expect(codeFrom(fresh.page)).toBeTruthy();
    // Age the session's sign-in by ten minutes, as time passing would.
    await akamon.deps.database.db
      .updateTable('oidc_payload')
      .set((eb) => ({ payload: eb.fn('jsonb_set', [eb.ref('payload'), eb.val('{loginTs}'), eb.val(JSON.stringify(Math.floor(Date.now() / 1000) - 600))]) as never }))
      .where('model', '=', 'Session')
      .execute();
    const stale = await startAuthorization(browser, akamon, strict, { prompt: 'none' });
    expect(new URL(stale.page.url).searchParams.get('error')).toBe('interaction_required');
    const relaxed = await startAuthorization(browser, akamon, vpn, { prompt: 'none' });
    expect(codeFrom(relaxed.page)).toBeTruthy();
  });

  test('a person who applied for MFA is asked at every client', async () => {
    const { account, secret } = await enrolled();
    await akamon.deps.accountService.setMfaRequired(account.commonId, true);
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, plain);
    const page = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(page.html).toContain('Verify your identity');
    expect(codeFrom(await browser.submit(page, /\/totp$/, { code: await totpAt(secret, 1) }))).toBeTruthy();
  });
});

test('a person applies for MFA on the account home and sets up an app right away', async () => {
  const account = await akamon.createReadyAccount();
  const browser = new Browser(akamon.url);
  const signIn = await browser.visit(`${akamon.url}/account`);
  const home = await enterCredentials(browser, signIn, account.commonId, account.password);
  expect(home.url).toBe(`${akamon.url}/account`);
  expect(home.html).toContain('Not using it');
  const enroll = await browser.submit(home, /\/account\/mfa$/, {});
  expect(enroll.html).toContain('More information required');
  const app = await chooseMethod(browser, enroll);
  const done = await finishEnrolment(browser, akamon, await browser.submit(app, /\/totp$/, { code: await totpAt(secretOn(app)) }));
  expect(done.url).toBe(`${akamon.url}/account`);
  expect(done.html).toContain('Authenticator app');
  expect((await akamon.deps.accounts.findById(account.id))!.mfa_required).toBe(true);
  const forged = await browser.submit(home, /\/account\/mfa$/, {}, { csrf: 'forged' });
  expect(forged.status).toBe(403);
});

test('a set-up cancelled halfway is resumed from the account home', async () => {
  const account = await akamon.createReadyAccount();
  const browser = new Browser(akamon.url);
  const home = await enterCredentials(browser, await browser.visit(`${akamon.url}/account`), account.commonId, account.password);
  const enroll = await browser.submit(home, /\/account\/mfa$/, {});
  await browser.submit(enroll, /\/abort$/, {});
  expect((await akamon.deps.accounts.findById(account.id))!.mfa_required).toBe(true);
  const later = await browser.visit(`${akamon.url}/account`);
  expect(later.html).toContain('no sign-in method is set up yet');
  const resume = await browser.visit(`${akamon.url}${/href="(\/account\/login\?add=1[^"]*)"/.exec(later.html)![1].replace(/&amp;/g, '&')}`);
  expect(resume.html).toContain('More information required');
  const app = await chooseMethod(browser, resume);
  const done = await finishEnrolment(browser, akamon, await browser.submit(app, /\/totp$/, { code: await totpAt(secretOn(app)) }));
  expect(new URL(done.url).pathname).toBe('/account');
  expect(done.html).not.toContain('no sign-in method is set up yet');
  expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(1);
});

describe('reading factors', () => {
  const tokens = () => new TokenStore(akamon.deps.database.db);
  /** An account with an app, a security key used twice (a counter, a last use) and a lent token: every kind of column set. */
  async function withFactors() {
    const account = await akamon.createReadyAccount();
    const store = akamon.deps.mfaStore;
    await store.insert({ accountId: account.id, kind: 'totp', label: 'Phone', secretEnc: 'sealed-secret' });
    const key = await store.insert({ accountId: account.id, kind: 'webauthn', label: 'Key', credential: { id: `cred-${account.id}`, publicKey: 'pk', signCount: 0, transports: ['usb', 'nfc'] } });
    expect(await store.advanceCounter(key.id, 4_294_967_296)).toBe(true);
    const serial = `T${account.id.slice(0, 8)}`;
    await tokens().insert({ serial, secretEnc: 'sealed-token', digits: 8, period: 60 });
    expect(await tokens().assign(serial, account.id)).toBe(true);
    return account;
  }

  test("the account with its factors in one read gives the account's row and exactly what factors() gives, in its order", async () => {
    const account = await withFactors();
    const together = await akamon.deps.mfaStore.accountWithFactors(account.id);
    expect(together?.account).toEqual(await akamon.deps.accounts.findById(account.id));
    const factors = await akamon.deps.mfaStore.factors(account.id);
    expect(factors.map((f) => f.kind)).toEqual(['totp', 'webauthn', 'token']);
    expect(factors[1]).toMatchObject({ sign_count: '4294967296', last_used_at: expect.any(Date), created_at: expect.any(Date) });
    expect(together?.factors).toEqual(factors);
    expect(await akamon.deps.mfaStore.accountWithFactors('not-a-uuid')).toBeUndefined();
    expect(await akamon.deps.mfaStore.accountWithFactors('00000000-0000-4000-8000-000000000000')).toBeUndefined();
  });

  test('within one request the factors are read once, and again after any write of factors', async () => {
    const account = await withFactors();
    const store = akamon.deps.mfaStore;
    const sent = () => akamon.deps.database.stats().queries;
    await inRequestMemo(async () => {
      const before = sent();
      const first = await store.factors(account.id);
      first[0]!.label = 'changed by a caller';
      const again = await store.factors(account.id);
      expect(sent() - before).toBe(1);
      expect(again[0]!.label).toBe('Phone');
      expect(await store.deleteOne(account.id, again[0]!.id)).toBe(true);
      expect((await store.factors(account.id)).map((f) => f.kind)).toEqual(['webauthn', 'token']);
      await tokens().unassign(again[2]!.token_serial!);
      expect((await store.factors(account.id)).map((f) => f.kind)).toEqual(['webauthn']);
    });
  });
});

describe('lent hardware tokens', () => {
  const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const tokenCode = (offsetSteps = 0) => generate({ secret: SECRET, digits: 8, period: 60, epoch: Math.floor(Date.now() / 1000) + offsetSteps * 60 });

  test('a lent 8-digit, 60-second token works like an app, stops working when taken back, and is never lent twice', async () => {
    const serial = `TK${Date.now()}`;
    await akamon.deps.tokens.add({ serial, secret: SECRET, digits: 8, period: 60 });
    const stored = await akamon.deps.database.db.selectFrom('hardware_token').selectAll().where('serial', '=', serial).executeTakeFirstOrThrow();
    expect(stored.secret_enc).not.toContain(SECRET);
    await expect(akamon.deps.tokens.add({ serial, secret: SECRET, digits: 8, period: 60 })).rejects.toMatchObject({ code: 'token_exists' });
    await expect(akamon.deps.tokens.add({ serial: 'x y', secret: SECRET, digits: 8, period: 60 })).rejects.toMatchObject({ code: 'invalid_serial' });
    await expect(akamon.deps.tokens.add({ serial: 'T2', secret: 'not-base32!', digits: 8, period: 60 })).rejects.toMatchObject({ code: 'invalid_secret' });
    // 80 bits is base32 but too short for the TOTP library: refused at loading, not a 500 later.
    await expect(akamon.deps.tokens.add({ serial: 'T4', secret: 'JBSWY3DPEHPK3PXP', digits: 6, period: 30 })).rejects.toMatchObject({ code: 'invalid_secret' });
    await expect(akamon.deps.tokens.add({ serial: 'T3', secret: SECRET, digits: 7, period: 60 })).rejects.toMatchObject({ code: 'invalid_digits' });

    const account = await akamon.createReadyAccount();
    const other = await akamon.createReadyAccount();
    await akamon.deps.tokens.assign(serial, account.id);
    await expect(akamon.deps.tokens.assign(serial, other.id)).rejects.toMatchObject({ code: 'token_unavailable' });
    const [factor] = await akamon.deps.mfa.factors(account.id);
    expect(factor).toMatchObject({ kind: 'token', token_serial: serial, digits: 8, period: 60, is_default: true });

    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    const page = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(page.html).toContain('Verify your identity');
    const done = await browser.submit(page, /\/totp$/, { code: await tokenCode() });
    expect(claimsOf((await redeem(akamon, vpn, codeFrom(done), started.verifier)).body.id_token).amr).toEqual(['pwd', 'otp']);

    await akamon.deps.tokens.unassign(serial);
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(0);
    expect(await akamon.deps.mfa.verifyTotp(account.id, await tokenCode(1))).toEqual({ ok: false, reason: 'wrong_code' });
    await akamon.deps.tokens.assign(serial, other.id);
    expect((await akamon.deps.tokens.list()).find((t) => t.serial === serial)).toMatchObject({ assignedTo: other.commonId });
  });
});

describe('regressions found in review', () => {
  test('an essential MFA acr in the claims parameter leads to the second factor, not to the password again', async () => {
    const { account, secret } = await enrolled();
    const browser = new Browser(akamon.url);
    const claims = JSON.stringify({ id_token: { acr: { essential: true, value: ACR_MFA } } });
    const started = await startAuthorization(browser, akamon, plain, { claims });
    const page = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(page.html).toContain('Verify your identity');
    const done = await browser.submit(page, /\/totp$/, { code: await totpAt(secret, 1) });
    expect(claimsOf((await redeem(akamon, plain, codeFrom(done), started.verifier)).body.id_token).acr).toBe(ACR_MFA);
  });

  test('an operator unlock also lifts a hard-stopped second-factor method', async () => {
    const { account, secret } = await enrolled();
    await akamon.deps.database.db
      .insertInto('throttle')
      .values({ key: `mfa:totp:${account.id}`, failures: 100, last_failure_at: new Date(), locked_until: null })
      .execute();
    expect(await akamon.deps.mfa.verifyTotp(account.id, await totpAt(secret, 1))).toMatchObject({ ok: false, reason: 'locked', blocked: true });
    const unlocked = await fetch(`${akamon.url}/admin/api/accounts/${account.commonId}/unlock`, { method: 'POST', headers: { authorization: `Bearer ${akamon.operatorToken}` } });
    expect(unlocked.status).toBe(200);
    expect((await akamon.deps.mfa.verifyTotp(account.id, await totpAt(secret, 1))).ok).toBe(true);
  });

  test('reset-mfa gives a lent token back, so it can be lent again', async () => {
    const account = await akamon.createReadyAccount();
    const serial = `RESET${Date.now()}`;
    await akamon.deps.tokens.add({ serial, secret: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', digits: 6, period: 30 });
    await akamon.deps.tokens.assign(serial, account.id);
    await akamon.deps.mfa.reset(account.id);
    expect((await akamon.deps.tokens.list()).find((t) => t.serial === serial)?.assignedTo).toBeNull();
    const other = await akamon.createReadyAccount();
    await akamon.deps.tokens.assign(serial, other.id);
  });
});

describe('operators', () => {
  test('discovery lists the acr values', async () => {
    const discovery = (await (await fetch(`${akamon.url}/.well-known/openid-configuration`)).json()) as { acr_values_supported: string[] };
    expect(discovery.acr_values_supported).toEqual([ACR_PASSWORD, ACR_MFA, ACR_PHISHING_RESISTANT]);
  });

  test('account show lists factors without secrets; reset-mfa removes them so the person enrols again', async () => {
    const { account, secret } = await enrolled();
    const auth = { authorization: `Bearer ${akamon.operatorToken}`, 'content-type': 'application/json' };
    const shown = await (await fetch(`${akamon.url}/admin/api/accounts/${account.commonId}`, { headers: auth })).text();
    expect(JSON.parse(shown).factors).toEqual([expect.objectContaining({ kind: 'totp', label: 'Authenticator app', default: true })]);
    expect(shown).not.toContain(secret);
    const required = await fetch(`${akamon.url}/admin/api/accounts/${account.commonId}`, { method: 'PATCH', headers: auth, body: JSON.stringify({ requireMfa: true }) });
    expect(((await required.json()) as { mfaRequired: boolean }).mfaRequired).toBe(true);
    const reset = await fetch(`${akamon.url}/admin/api/accounts/${account.commonId}/reset-mfa`, { method: 'POST', headers: auth });
    expect(((await reset.json()) as { removedFactors: number }).removedFactors).toBe(1);
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, plain);
    const page = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(page.html).toContain('More information required');
  });
});
