import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, decode, type Page } from '../support/browser.ts';
import { codeFrom, enterCredentials, freshTotpStep, redeem, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';
import { shiftableClock } from '../support/clock.ts';
import { refuseWrites } from '../support/faults.ts';
import { upstreamIdv, verifyUpstream } from '../support/idv.ts';

const DAY = 24 * 3600 * 1000;
const clock = shiftableClock();
const upstream = upstreamIdv();
let akamon: RunningAkamon;
let portal: Awaited<ReturnType<RunningAkamon['createClient']>>;
let cardCounter = 0;
const newCard = () => `card-${process.pid}-${Date.now() % 100000}-${++cardCounter}`;

beforeAll(async () => {
  akamon = await startAkamon({ clock, envFor: upstream.envFor, env: { AKAMON_SALVAGE_DAYS: '30' } });
  portal = await akamon.createClient({ name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
});
afterAll(async () => {
  await akamon.close();
  await upstream.close();
});

/** Signs in to the account home at /account/idv with the password. */
async function idvHome(account: { commonId: string; password: string }): Promise<{ browser: Browser; page: Page }> {
  const browser = new Browser(akamon.url);
  const page = await enterCredentials(browser, await browser.visit(`${akamon.url}/account/idv`), account.commonId, account.password);
  expect(new URL(page.url).pathname).toBe('/account/idv');
  return { browser, page };
}

/** Links the account to a card through the account home; returns the page after linking. */
async function link(account: { commonId: string; password: string }, card: string, name: string): Promise<Page> {
  const { browser, page } = await idvHome(account);
  const atUpstream = await browser.submit(page, /\/account\/idv\/link$/, {});
  return verifyUpstream(browser, atUpstream, card, name);
}

/** A ready account with an authenticator app ("Lost phone"), and the app's secret. */
async function accountWithApp() {
  const account = await akamon.createReadyAccount();
  const { generate } = await import('otplib');
  // Enrolment takes the current step's code and the step-up below the previous step's.
  await freshTotpStep();
  const pending = akamon.deps.mfa.pendingTotp();
  await akamon.deps.mfa.confirmTotp(account.id, pending.sealed, await generate({ secret: pending.secret }), 'Lost phone');
  return { account, secret: pending.secret };
}

/** An authorization at the portal that goes straight to "verify your identity with your ID card". */
async function verifyFromSignIn(card: string, name: string, client = portal) {
  const browser = new Browser(akamon.url);
  const started = await startAuthorization(browser, akamon, client);
  expect(started.page.html).toContain('Verify your identity with your ID card');
  const atUpstream = await browser.submit(started.page, /\/idv$/, {});
  return { browser, started, page: await verifyUpstream(browser, atUpstream, card, name) };
}

describe('pre-link from the account home', () => {
  test('links the pairwise identifier and the name only, shows the status, and refuses a card linked to another account', async () => {
    const account = await akamon.createReadyAccount({ name: 'Hanako Todai' });
    const card = newCard();
    const linked = await link(account, card, '東大 花子');
    expect(linked.status).toBe(200);
    expect(linked.html).toContain('Your ID card is now linked to this account.');
    expect(linked.html).toContain('東大 花子');

    const rows = await akamon.deps.database.db.selectFrom('identity_link').selectAll().where('account_id', '=', account.id).execute();
    expect(rows).toHaveLength(1);
    expect(Object.keys(rows[0]).sort()).toEqual(['account_id', 'issuer', 'linked_at', 'name', 'subject']);
    expect(rows[0]).toMatchObject({ issuer: upstream.holder.idp!.issuer, name: '東大 花子' });
    // Pairwise: the upstream's identifier, not the card number typed there.
    expect(rows[0].subject).not.toContain(card);
    expect((await akamon.deps.audit.list({ accountId: account.id, limit: 1 }))[0]).toMatchObject({ actor: 'self', action: 'idv.linked' });

    const { page: home } = await idvHome(account);
    expect(home.html).toContain('Linked on');

    // The same card for another account is refused, and the first link stays.
    const other = await akamon.createReadyAccount();
    const refused = await link(other, card, '東大 花子');
    expect(refused.status).toBe(409);
    expect(refused.html).toContain('already linked to another account');
    expect(await akamon.deps.idv.linkOf(other.id)).toBeUndefined();
    expect((await akamon.deps.idv.linkOf(account.id))?.subject).toBe(rows[0].subject);
    expect((await akamon.deps.audit.list({ accountId: other.id, limit: 1 }))[0]).toMatchObject({ action: 'idv.link_refused' });
  });

  test('an account with MFA links only after a fresh second factor', async () => {
    const account = await akamon.createReadyAccount();
    const { generate } = await import('otplib');
    await freshTotpStep();
    const pending = akamon.deps.mfa.pendingTotp();
    await akamon.deps.mfa.confirmTotp(account.id, pending.sealed, await generate({ secret: pending.secret, epoch: Math.floor(Date.now() / 1000) - 30 }), 'Phone app');
    const { browser, page } = await idvHome(account);
    const stepUp = await browser.submit(page, /\/account\/idv\/link$/, {});
    expect(stepUp.html).toContain('Verify your identity');
    const back = await browser.submit(stepUp, /\/totp$/, { code: await generate({ secret: pending.secret }) });
    expect(new URL(back.url).pathname).toBe('/account/idv');
    const linked = await verifyUpstream(browser, await browser.submit(back, /\/account\/idv\/link$/, {}), newCard(), 'Taro Komaba');
    expect(linked.html).toContain('Your ID card is now linked to this account.');
  });

  test('removing the link needs a fresh sign-in', async () => {
    const account = await akamon.createReadyAccount();
    await link(account, newCard(), 'Jiro Hongo');
    const { browser, page } = await idvHome(account);
    // Eleven minutes later the sign-in is no longer fresh: the password is asked again first.
    clock.offset = 11 * 60 * 1000;
    const response = await browser.request(`${akamon.url}/account/idv/unlink`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: /name="_csrf" value="([^"]+)"/.exec(page.html)![1] }),
    });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/account/login?fresh=password&back=%2Faccount%2Fidv');
    expect(await akamon.deps.idv.linkOf(account.id)).toBeDefined();
    clock.offset = 0;
    const password = await browser.visit(response.headers.get('location')!);
    expect(password.html).toMatch(/name="password"/);
    const back = await browser.submit(password, /\/password$/, { password: account.password });
    expect(new URL(back.url).pathname).toBe('/account/idv');
    const removed = await browser.submit(back, /\/account\/idv\/unlink$/, {});
    expect(removed.html).toContain('The link to your ID card was removed.');
    expect(await akamon.deps.idv.linkOf(account.id)).toBeUndefined();
    expect((await akamon.deps.audit.list({ accountId: account.id, limit: 1 }))[0]).toMatchObject({ actor: 'self', action: 'idv.unlinked' });
  });
});

describe('recovery through the link', () => {
  test('(a) a temporary password, shown once: sessions end, and it must be changed at the next sign-in', async () => {
    const account = await akamon.createReadyAccount();
    const card = newCard();
    await link(account, card, 'Saburo Yayoi');
    const before = await signIn(new Browser(akamon.url), akamon, portal, account);
    const tokens = await redeem(akamon, portal, before.code!, before.verifier);
    expect(tokens.body.refresh_token).toBeTruthy();

    const { browser, page: choice } = await verifyFromSignIn(card, 'Saburo Yayoi');
    expect(choice.html).toContain('Your identity is confirmed');
    const issued = await browser.submit(choice, /\/idv\/recover\/password$/, {});
    const temporary = decode(/id="temporary-password"><code>([^<]+)<\/code>/.exec(issued.html)![1]);
    expect(temporary).toHaveLength(16);
    // The page says what was done, not the choice page's "either way".
    expect(issued.html).toContain('<h1>Your temporary password has been issued</h1>');
    expect(issued.html).toContain('signed out on every device and system');
    expect(issued.html).not.toContain('Either way');
    expect((await akamon.deps.accounts.findById(account.id))!.must_change_password).toBe(true);
    expect((await akamon.deps.audit.list({ accountId: account.id, limit: 1 }))[0]).toMatchObject({ actor: 'self', action: 'password.reissued', details: { via: 'identity_verification' } });
    // Every earlier session and refresh token ended.
    expect((await tokenRequest(akamon, portal, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token })).body.error).toBe('invalid_grant');
    // The same choice cannot be made twice.
    expect((await browser.submit(choice, /\/idv\/recover\/password$/, {})).status).toBe(400);

    // "Continue to sign in" returns to the portal's sign-in, at this account's password page.
    const passwordPage = await browser.visit(decode(/href="([^"]+)">Continue to sign in/.exec(issued.html)![1]));
    expect(passwordPage.html).toContain(account.commonId);
    const change = await browser.submit(passwordPage, /\/password$/, { password: temporary });
    expect(change.html).toContain('Choose a new password');
    expect(change.html).toContain('or a temporary password');
    const next = 'Recovered-Pass-2027';
    const done = await browser.submit(change, /\/change$/, { current: temporary, new: next, confirm: next });
    expect(codeFrom(done)).toBeTruthy();
  });

  test('(b) second factors removed from /recover: sessions end and the person enrols again at the next sign-in', async () => {
    const { account, secret } = await accountWithApp();
    // An intruder's address, say: with the factors gone it alone would reset the password.
    await akamon.deps.accounts.setRecoveryEmail(account.id, `set-by-someone-${account.commonId}@example.com`);
    const card = newCard();
    // Before the pre-link the card leads nowhere: the office.
    const browser = new Browser(akamon.url);
    const start = await browser.visit(`${akamon.url}/recover`);
    expect(start.html).toContain('Verify your identity with your ID card');
    const unknown = await verifyUpstream(browser, await browser.submit(start, /\/idv\/start$/, {}), card, 'Shiro Kashiwa');
    expect(unknown.status).toBe(404);
    expect(unknown.html).toContain('not linked to any account');

    expect(await linkThroughHomeWithMfa(account, secret, card, 'Shiro Kashiwa')).toBe(true);
    await akamon.deps.accountService.setMfaRequired(account.commonId, true);
    const session = await signInWithTotp(account, secret);
    const again = new Browser(akamon.url);
    const choice = await verifyUpstream(again, await again.submit(await again.visit(`${akamon.url}/recover`), /\/idv\/start$/, {}), card, 'Shiro Kashiwa');
    const done = await again.submit(choice, /\/idv\/recover\/mfa$/, {});
    expect(done.html).toContain('<h1>Your sign-in methods were removed</h1>');
    expect(done.html).not.toContain('Either way');
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(0);
    expect((await akamon.deps.accounts.findById(account.id))!).toMatchObject({ mfa_required: true, recovery_email: null });
    expect((await akamon.deps.audit.list({ accountId: account.id, limit: 1 }))[0]).toMatchObject({ action: 'mfa.reset', details: { via: 'identity_verification', removedFactors: 1 } });
    expect((await tokenRequest(akamon, portal, { grant_type: 'refresh_token', refresh_token: session })).body.error).toBe('invalid_grant');

    const fresh = new Browser(akamon.url);
    const started = await startAuthorization(fresh, akamon, portal);
    const enrol = await enterCredentials(fresh, started.page, account.commonId, account.password);
    expect(enrol.html).toContain('Which method would you like to set up?');
  });

  test('from the factor page of a sign-in: the recovery ends the half-done sign-in, so the password is asked again, then a new set-up', async () => {
    const { account, secret } = await accountWithApp();
    const card = newCard();
    expect(await linkThroughHomeWithMfa(account, secret, card, 'Nanako Hongo')).toBe(true);
    await akamon.deps.accountService.setMfaRequired(account.commonId, true);
    const db = akamon.deps.database.db;
    const sessions = () => db.selectFrom('oidc_payload').select('id').where('model', '=', 'Session').where('account_id', '=', account.id).execute();

    // The password is proven; the phone is lost: "I can't use any of these", then the ID card.
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, portal);
    const uid = new URL(started.page.url).pathname.split('/')[2]!;
    const factorPage = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(factorPage.html).toContain('Verify your identity');
    const cantUse = await browser.visit(`${akamon.url}/interaction/${uid}?help=1`);
    const choice = await verifyUpstream(browser, await browser.submit(cantUse, /\/idv$/, {}), card, 'Nanako Hongo');
    expect(choice.html).toContain('Your identity is confirmed');
    // The password was typed a little while before the card was shown (the same second would count as after the ending).
    await db
      .updateTable('interaction_state')
      .set({ data: sql`jsonb_set(data, '{passwordResult,result,sign_in,at}', to_jsonb((data #>> '{passwordResult,result,sign_in,at}')::bigint - 5))` })
      .where('uid', '=', uid)
      .execute();
    const removed = await browser.submit(choice, /\/idv\/recover\/mfa$/, {});
    expect(removed.html).toContain('<h1>Your sign-in methods were removed</h1>');
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(0);

    // Back to the sign-in: the password proven before the recovery no longer counts; the recovery
    // ended every session (the account home's), and the half-done sign-in had made none.
    const back = await browser.visit(`${akamon.url}${decode(/href="([^"]+)">Continue to sign in/.exec(removed.html)![1])}`);
    expect([back.status, back.url, back.html.includes('Enter your password'), /action="[^"]*\/totp"/.test(back.html)]).toEqual([200, `${akamon.url}/interaction/${uid}`, true, false]);
    expect(await sessions()).toEqual([]);
    const enrol = await browser.submit(back, /\/password$/, { password: account.password });
    expect(enrol.html).toContain('Which method would you like to set up?');
  });

  test('a name that no longer matches sends the person to the office', async () => {
    const account = await akamon.createReadyAccount();
    const card = newCard();
    await link(account, card, 'Goro Nakano');
    const { page } = await verifyFromSignIn(card, 'Goro Shinjuku');
    expect(page.status).toBe(403);
    expect(page.html).toContain('does not match');
    expect((await akamon.deps.audit.list({ accountId: account.id, limit: 1 }))[0]).toMatchObject({ action: 'idv.name_mismatch' });
    // Width, case and spaces do not count as a different name.
    const { page: same } = await verifyFromSignIn(card, 'ＧＯＲＯ　ＮＡＫＡＮＯ');
    expect(same.html).toContain('Your identity is confirmed');
  });

  test('recoveries are limited to three a day per account', async () => {
    const account = await akamon.createReadyAccount();
    const card = newCard();
    await link(account, card, 'Rokuro Ueno');
    for (let i = 0; i < 3; i += 1) expect((await akamon.deps.idv.recover((await akamon.deps.accounts.findById(account.id))!, 'password')).ok).toBe(true);
    const { browser, page } = await verifyFromSignIn(card, 'Rokuro Ueno');
    const limited = await browser.submit(page, /\/idv\/recover\/password$/, {});
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBeTruthy();
    expect(limited.html).toContain('recovered several times recently');
  });

  test('a cancelled or replayed upstream answer changes nothing', async () => {
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, portal);
    const atUpstream = await browser.submit(started.page, /\/idv$/, {});
    const state = new URL(atUpstream.url).searchParams.get('state')!;
    const cancelled = await browser.visit(`${akamon.url}/idv/callback?error=access_denied&state=${state}`);
    expect(cancelled.status).toBe(400);
    expect(cancelled.html).toContain('was cancelled');
    // The flow was used up by that answer.
    expect((await browser.visit(`${akamon.url}/idv/callback?code=x&state=${state}`)).status).toBe(400);
    // Without the flow cookie (another browser) the answer is refused.
    expect((await new Browser(akamon.url).visit(`${akamon.url}/idv/callback?code=x&state=${state}`)).status).toBe(400);
  });
});

// Found by a fault probe: the verification was used up (saved done) before the link or the
// reissue, in a transaction of its own, so the retry a 503 asks for found it spent.
describe('under a database fault', () => {
  /** Through the upstream provider with a card; the URL it sends the browser back to (not yet visited). */
  async function upstreamAnswer(atUpstream: Page, card: string, name: string): Promise<string> {
    const there = new Browser(new URL(atUpstream.url).origin);
    const back = await there.submit(await there.visit(atUpstream.url), /\/card$/, { card, name });
    expect(new URL(back.url).pathname).toBe('/idv/callback');
    return back.url;
  }

  /** Signed in at the account home's ID card page and verified upstream: the browser, sent on to /account/idv/linked but not yet there. */
  async function verifiedForLink(account: { commonId: string; password: string }, card: string): Promise<Browser> {
    const { browser, page } = await idvHome(account);
    const back = await browser.request(await upstreamAnswer(await browser.submit(page, /\/account\/idv\/link$/, {}), card, 'Fault Person'));
    expect(back.headers.get('location')).toBe('/account/idv/linked');
    return browser;
  }

  test('a stall at the link answers 503, and the reload links the card', async () => {
    const account = await akamon.createReadyAccount({ name: 'Fault Person' });
    const browser = await verifiedForLink(account, newCard());
    const stop = await refuseWrites(akamon.deps.database.db, 'stall_idv_link', { table: 'identity_link', on: 'insert', when: `new.account_id = '${account.id}'` });
    let failed: Page;
    try {
      failed = await browser.visit('/account/idv/linked');
    } finally {
      await stop();
    }
    expect(failed.status).toBe(503);
    const reload = await browser.visit('/account/idv/linked');
    expect(reload.status).toBe(200);
    expect(reload.html).toContain('Your ID card is now linked to this account.');
    expect(await akamon.deps.database.db.selectFrom('identity_link').select('account_id').where('account_id', '=', account.id).execute()).toHaveLength(1);
  }, 60_000);

  test('a stall at the password reissue answers 503, and the choice sent again issues the temporary password', async () => {
    const account = await akamon.createReadyAccount({ name: 'Fault Person' });
    const card = newCard();
    expect((await (await verifiedForLink(account, card)).visit('/account/idv/linked')).status).toBe(200);
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, portal);
    const choice = await browser.visit(await upstreamAnswer(await browser.submit(started.page, /\/idv$/, {}), card, 'Fault Person'));
    expect(choice.html).toContain('/idv/recover/password');
    const form = browser.form(choice, /\/idv\/recover\/password$/, {});
    const choose = () => browser.visit(form.url, { method: 'POST', body: new URLSearchParams(form.body), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const stop = await refuseWrites(akamon.deps.database.db, 'stall_idv_reissue', {
      table: 'account',
      on: 'update',
      when: `new.id = '${account.id}' and new.password_hash is distinct from old.password_hash`,
    });
    let failed: Page;
    try {
      failed = await choose();
    } finally {
      await stop();
    }
    expect(failed.status).toBe(503);
    const retry = await choose();
    expect(retry.status).toBe(200);
    expect(retry.html).toContain('temporary-password');
  }, 60_000);

  /** A linked account verified from a sign-in at the portal: the browser, the sign-in's uid, and the temporary-password choice (sent as often as asked). */
  async function recoveringFromSignIn(account: { id: string; commonId: string; password: string }) {
    const card = newCard();
    expect((await (await verifiedForLink(account, card)).visit('/account/idv/linked')).status).toBe(200);
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, portal);
    const uid = new URL(started.page.url).pathname.split('/')[2]!;
    const choice = await browser.visit(await upstreamAnswer(await browser.submit(started.page, /\/idv$/, {}), card, 'Fault Person'));
    const form = browser.form(choice, /\/idv\/recover\/password$/, {});
    const choose = () => browser.visit(form.url, { method: 'POST', body: new URLSearchParams(form.body), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    return { browser, uid, choose };
  }

  /** The temporary password a recovery page shows, proven by signing in with it where the page continues. */
  async function usable(browser: Browser, issued: Page, account: { commonId: string }) {
    const temporary = decode(/id="temporary-password"><code>([^<]+)<\/code>/.exec(issued.html)![1]);
    const passwordPage = await browser.visit(decode(/href="([^"]+)">Continue to sign in/.exec(issued.html)![1]));
    expect(passwordPage.html).toContain(account.commonId);
    expect((await browser.submit(passwordPage, /\/password$/, { password: temporary })).html).toContain('Choose a new password');
  }

  // Found by a fault review: the temporary password was issued in the recovery's unit, and the
  // sign-in it continues was told the account afterwards; that write refused, the answer was 503,
  // the old password was gone and the new one never shown (the retry found the verification spent).
  test('a stall as the sign-in is told the recovered account answers 503 and issues nothing; the choice sent again shows the password', async () => {
    const account = await akamon.createReadyAccount({ name: 'Fault Person' });
    const { browser, uid, choose } = await recoveringFromSignIn(account);
    const hash = async () => (await akamon.deps.accounts.findById(account.id))!.password_hash;
    const before = await hash();
    const when = `new.uid = '${uid}' and new.data ? 'identifier'`;
    const db = akamon.deps.database.db;
    const stops = [
      await refuseWrites(db, 'stall_idv_continue_insert', { table: 'interaction_state', on: 'insert', when }),
      await refuseWrites(db, 'stall_idv_continue_update', { table: 'interaction_state', on: 'update', when }),
    ];
    let failed: Page;
    try {
      failed = await choose();
    } finally {
      for (const stop of stops) await stop();
    }
    expect(failed.status).toBe(503);
    expect(await hash()).toBe(before);
    const retry = await choose();
    expect(retry.status).toBe(200);
    await usable(browser, retry, account);
  }, 60_000);

  test("a stall as the recovery's turn is given back: the temporary password is shown all the same", async () => {
    const account = await akamon.createReadyAccount({ name: 'Fault Person' });
    const { browser, choose } = await recoveringFromSignIn(account);
    // The identity-verification flow's turn ends (its state without the turn) meets a statement timeout.
    const stop = await refuseWrites(akamon.deps.database.db, 'stall_idv_turn_end', { table: 'interaction_state', on: 'update', when: `new.uid like 'idv:%' and not (new.data ? '_turn')` });
    let issued: Page;
    try {
      issued = await choose();
    } finally {
      await stop();
    }
    expect(issued.status).toBe(200);
    await usable(browser, issued, account);
  }, 60_000);
});

describe('hostile input on the identity-verification endpoints', () => {
  test('forged, oversized and out-of-order requests get a clear 4xx page and change nothing', async () => {
    const browser = new Browser(akamon.url);
    const form = (body: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });
    // No CSRF token, and a wrong one.
    expect((await browser.visit(`${akamon.url}/idv/start`, form({}))).status).toBe(403);
    expect((await browser.visit(`${akamon.url}/idv/recover/password`, form({ _csrf: 'forged' }))).status).toBe(403);
    // A valid token but no verified flow behind it, or a kind that does not exist.
    const page = await browser.visit(`${akamon.url}/recover`);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.html)![1];
    expect((await browser.visit(`${akamon.url}/idv/recover/password`, form({ _csrf: csrf }))).status).toBe(400);
    expect((await browser.visit(`${akamon.url}/idv/recover/everything`, form({ _csrf: csrf }))).status).toBe(404);
    // Not a form, and a field sent twice.
    expect((await browser.visit(`${akamon.url}/idv/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(415);
    expect((await browser.visit(`${akamon.url}/idv/start`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `_csrf=${csrf}&_csrf=${csrf}` })).status).toBe(
      400,
    );
    // A callback nobody started, with a huge or a strange state; a forged flow cookie.
    expect((await browser.visit(`${akamon.url}/idv/callback?code=abc&state=${'x'.repeat(6000)}`)).status).toBe(400);
    browser.cookies.set('akamon_idv;/', { name: 'akamon_idv', value: 'AAAAAAAAAAAAAAAAAAAAAA', path: '/' });
    expect((await browser.visit(`${akamon.url}/idv/callback?code=abc&state=%00%ff`)).status).toBe(400);
    // The account home's link pages without a session go to the sign-in; without a flow, 400.
    expect((await new Browser(akamon.url).request(`${akamon.url}/account/idv/linked`)).headers.get('location')).toMatch(/^\/account\/login/);
    const account = await akamon.createReadyAccount();
    const { browser: home } = await idvHome(account);
    expect((await home.visit(`${akamon.url}/account/idv/linked`)).status).toBe(400);
    expect(await akamon.deps.idv.linkOf(account.id)).toBeUndefined();
    expect(akamon.logs.join('')).not.toMatch(/"status":500/);
  });
});

describe('data salvage after revocation', () => {
  test('a revoked, linked account reaches salvage clients only, with a salvage claim, and only within the period', async () => {
    const salvageClient = await akamon.createClient({ name: 'Data Export', salvage: true, redirectUris: ['http://127.0.0.1:9/export'] });
    const account = await akamon.createReadyAccount({ name: 'Nanami Todai' });
    const card = newCard();
    await link(account, card, 'Nanami Todai');
    await akamon.deps.accountService.setStatus(account.commonId, 'revoked', 'graduation');

    // The password at the salvage client: the closed account is offered identity verification.
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, salvageClient);
    const offer = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(offer.status).toBe(403);
    expect(offer.html).toContain('retrieve your data');
    const back = await verifyUpstream(browser, await browser.submit(offer, /\/idv$/, {}), card, 'Nanami Todai');
    const tokens = await redeem(akamon, salvageClient, codeFrom(back), started.verifier);
    expect(tokens.status).toBe(200);
    const claims = JSON.parse(Buffer.from(tokens.body.id_token.split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({ salvage: true, amr: ['idv'], acr: 'urn:akamon:acr:mfa' });
    const [event] = await akamon.deps.signinLog.list({ accountId: account.id, limit: 1 });
    expect(event).toMatchObject({ result: 'success', reason: 'salvage', client_id: salvageClient.clientId });

    // Any other client refuses it: with the salvage session (SSO) and through verification alike.
    const sso = await startAuthorization(browser, akamon, portal);
    expect(sso.page.status).toBe(403);
    expect(sso.page.html).toContain('53003');
    const elsewhere = await verifyFromSignIn(card, 'Nanami Todai');
    expect(elsewhere.page.status).toBe(403);
    expect(elsewhere.page.html).toContain('only the data-salvage services');

    // After the period (30 days here) the salvage client refuses too, and earlier tokens stop working.
    clock.offset = 31 * DAY;
    try {
      expect((await tokenRequest(akamon, salvageClient, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token })).body.error).toBe('invalid_grant');
      const late = new Browser(akamon.url);
      const lateStart = await startAuthorization(late, akamon, salvageClient);
      const over = await verifyUpstream(late, await late.submit(lateStart.page, /\/idv$/, {}), card, 'Nanami Todai');
      expect(over.status).toBe(403);
      expect(over.html).toContain('has ended');
    } finally {
      clock.offset = 0;
    }
  });

  test('an active account at a salvage client signs in as anywhere else, without a salvage claim', async () => {
    const salvageClient = await akamon.createClient({ name: 'Data Export 2', salvage: true, redirectUris: ['http://127.0.0.1:9/export2'] });
    const account = await akamon.createReadyAccount();
    const result = await signIn(new Browser(akamon.url), akamon, salvageClient, account);
    const tokens = await redeem(akamon, salvageClient, result.code!, result.verifier);
    const claims = JSON.parse(Buffer.from(tokens.body.id_token.split('.')[1], 'base64url').toString());
    expect(claims.salvage).toBeUndefined();
    expect(claims.amr).toEqual(['pwd']);
  });
});

/** A sign-in at the portal with password and TOTP; returns the refresh token. */
async function signInWithTotp(account: { commonId: string; password: string }, secret: string): Promise<string> {
  const { generate } = await import('otplib');
  const browser = new Browser(akamon.url);
  const started = await startAuthorization(browser, akamon, portal);
  const verify = await enterCredentials(browser, started.page, account.commonId, account.password);
  const done = await browser.submit(verify, /\/totp$/, { code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }) });
  const tokens = await redeem(akamon, portal, codeFrom(done), started.verifier);
  return tokens.body.refresh_token;
}

/** The pre-link of an account with MFA: password, a fresh TOTP code, then the upstream. */
async function linkThroughHomeWithMfa(account: { commonId: string; password: string; id: string }, secret: string, card: string, name: string): Promise<boolean> {
  const { generate } = await import('otplib');
  const { browser, page } = await idvHome(account);
  const stepUp = await browser.submit(page, /\/account\/idv\/link$/, {});
  const back = await browser.submit(stepUp, /\/totp$/, { code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) - 30 }) });
  const linked = await verifyUpstream(browser, await browser.submit(back, /\/account\/idv\/link$/, {}), card, name);
  return linked.html.includes('Your ID card is now linked');
}
