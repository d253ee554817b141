import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generate } from 'otplib';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { backchannelReceiver } from '../support/backchannel.ts';
import { refuseWrites } from '../support/faults.ts';
import { Browser, pressSignOut, type Page } from '../support/browser.ts';
import { solveCaptcha } from '../support/captcha.ts';
import { codeFrom, enterCredentials, freshTotpStep, redeem, startAuthorization, tokenRequest } from '../support/flows.ts';
import { mailedCode } from '../support/smtp-sink.ts';
import { ACCOUNT_CLIENT_ID } from '../../src/selfservice/account-client.ts';

/**
 * Security regression (issue 13, point 1): the account home kept a signed one-hour cookie of its own
 * that no sign-out touched. After "sign out everywhere" in a second browser, the first still opened
 * the account home and created an app password (audited after `sessions.ended`), and an old cookie
 * replayed after a plain sign-out still worked. Now every sign-out ends every session it names, at
 * once and on every node: the account home's, the provider's, the refresh tokens it names, with
 * back-channel notices. Two nodes share one database here; each browser is one person's device.
 */

let a: RunningAkamon;
let b: RunningAkamon;

beforeAll(async () => {
  // Back-channel notices go to a loopback receiver.
  a = await startAkamon({ env: { AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'true' } });
  b = await startAkamon({ share: a, env: { AKAMON_ISSUER: a.url, AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'true' } });
});
afterAll(async () => {
  await b.close();
  await a.close();
});

type Account = { commonId: string; password: string; id: string };

/** A device (browser) signed in to the account home at `path` through node A, and the page it shows. */
async function homeOn(account: Account, path = '/account'): Promise<{ device: Browser; page: Page }> {
  const device = new Browser(a.url);
  const page = await enterCredentials(device, await device.visit(`${a.url}${path}`), account.commonId, account.password);
  expect(new URL(page.url).pathname).toBe(path);
  return { device, page };
}

/** The same browser reaching another node (behind a load balancer). */
const via = (device: Browser, node: RunningAkamon) => new Browser(node.url, device.cookies);

/** Posts a form of a page the device loaded from node A to `node` instead, without following the answer. */
function postOn(node: RunningAkamon, device: Browser, page: Page, action: RegExp, fields: Record<string, string> = {}) {
  const { url, body } = device.form(page, action, fields);
  return via(device, node).request(url.replace(a.url, node.url), { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
}

/** What the account home answers this device at `node`: 200 for the page, 302 to its sign-in. */
async function homeStatus(device: Browser, node: RunningAkamon): Promise<number> {
  const response = await via(device, node).request(`${node.url}/account`);
  if (response.status === 302) expect(response.headers.get('location')).toBe('/account/login');
  return response.status;
}

/**
 * The account home sends this device to a sign-in page (the account picker, the Common ID or the
 * password form): no provider session signs it back in silently.
 */
async function landsOnSignIn(device: Browser): Promise<boolean> {
  const page = await device.visit(`${a.url}/account`);
  return new URL(page.url).pathname.startsWith('/interaction/') && /name="(account|identifier|password)"/.test(page.html);
}

const copyOf = (device: Browser) => new Browser(a.url, new Map([...device.cookies].map(([key, cookie]) => [key, { ...cookie }])));

const auditActions = async (accountId: string) => (await a.deps.audit.list({ accountId, limit: 50 })).map((e) => e.action).reverse();

const operator = async (node: RunningAkamon, path: string, body: Record<string, unknown> = {}) => {
  const response = await fetch(`${node.url}/admin/api${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${node.operatorToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
};

/** A relying party this device signs in to by single sign-on, with the tokens it got. */
async function relyingParty(device: Browser, input: Parameters<RunningAkamon['createClient']>[0], params: Record<string, string> = {}) {
  const rp = await a.createClient(input);
  let started = await startAuthorization(device, a, rp, params);
  if (/name="decision"/.test(started.page.html)) started = { ...started, page: await device.submit(started.page, /\/decide$/, { decision: 'approve' }) };
  const tokens = await redeem(a, rp, codeFrom(started.page), started.verifier);
  expect(tokens.body.refresh_token).toEqual(expect.any(String));
  const refreshes = async () => (await tokenRequest(b, rp, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token })).status;
  return { rp, refreshes };
}

describe('"sign out everywhere"', () => {
  test("in a second browser on node B ends the first browser's account home: its app-password POST is refused and nothing is made", async () => {
    const receiver = await backchannelReceiver();
    try {
      const account = await a.createReadyAccount();
      const { device: first, page: home } = await homeOn(account);
      const mail = await relyingParty(first, { name: 'Mail', backchannelLogoutUri: receiver.url, redirectUris: ['http://127.0.0.1:9/mail'] });
      const archive = await relyingParty(first, { name: 'Archive', firstParty: false, redirectUris: ['http://127.0.0.1:9/archive'] }, { scope: 'openid offline_access', prompt: 'consent' });

      const { device: second, page: secondHome } = await homeOn(account);
      const out = await postOn(b, second, secondHome, /\/account\/sign-out-everywhere$/);
      expect(out.status).toBe(303);

      // The first browser's page was loaded before: its POST finds the session ended and sends it to sign in.
      const created = await postOn(b, first, home, /\/account\/app-passwords$/, { name: 'Phone mail' });
      expect(created.status).toBe(302);
      expect(created.headers.get('location')).toBe('/account/login');
      expect(await a.deps.appPasswords.list(account.id)).toEqual([]);
      const actions = await auditActions(account.id);
      expect(actions).toContain('sessions.ended');
      expect(actions).not.toContain('app_password.created');

      for (const node of [a, b]) expect(await homeStatus(first, node)).toBe(302);
      expect(await landsOnSignIn(first)).toBe(true);
      // Every refresh token ends, with or without offline_access, and the back-channel relying party is told.
      expect(await mail.refreshes()).toBe(400);
      expect(await archive.refreshes()).toBe(400);
      const [logoutToken] = await receiver.waitFor(1);
      expect(JSON.parse(Buffer.from(logoutToken.split('.')[1], 'base64url').toString()).aud).toBe(mail.rp.clientId);
    } finally {
      await receiver.close();
    }
  });

  test('a session a request in flight writes back after it stays ended', async () => {
    const account = await a.createReadyAccount();
    const { device } = await homeOn(account);
    const row = await a.deps.database.db.selectFrom('oidc_payload').select('id').where('model', '=', 'Session').where('account_id', '=', account.id).executeTakeFirstOrThrow();
    // What a silent sign-in of this browser loaded as it began.
    const inFlight = (await a.akamon.provider().Session.find(row.id))!;
    expect(inFlight.accountId).toBe(account.id);
    // Sign-in times are whole seconds: the sign-out falls in a later second than the sign-in.
    await new Promise((resolve) => setTimeout(resolve, 1050 - (Date.now() % 1000)));
    await b.deps.payloads.revokeAccount(account.id);
    // ...and saved as it finished, after the sign-out deleted it.
    await inFlight.save(3600);
    expect(await a.deps.database.db.selectFrom('oidc_payload').select('id').where('model', '=', 'Session').where('account_id', '=', account.id).execute()).toHaveLength(1);

    expect(await a.akamon.provider().Session.find(row.id)).toBeUndefined();
    expect(await homeStatus(device, b)).toBe(302);
    expect(await landsOnSignIn(device)).toBe(true);
  });
});

describe('a plain sign-out', () => {
  test("ends this browser's session, its account home and the tokens without offline_access; a replayed cookie lands on sign-in", async () => {
    const account = await a.createReadyAccount();
    const { device } = await homeOn(account);
    const portal = await relyingParty(device, { name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
    const archive = await relyingParty(device, { name: 'Archive', firstParty: false, redirectUris: ['http://127.0.0.1:9/archive'] }, { scope: 'openid offline_access', prompt: 'consent' });
    const other = await homeOn(account);
    const replay = copyOf(device);

    const confirm = await pressSignOut(device, `${a.url}/account`);
    expect(confirm.html).toContain('Yes, sign me out');
    const done = await device.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(new URL(done.url).pathname).toBe('/session/end/success');
    expect(done.html).toContain('You have signed out of Akamon on this device');

    // The old cookies, replayed, on either node: sent to sign in, and no session signs them back in.
    for (const node of [a, b]) expect(await homeStatus(replay, node)).toBe(302);
    expect(await landsOnSignIn(replay)).toBe(true);
    expect(await portal.refreshes()).toBe(400);
    // offline_access was granted to stay connected while the person is away: a sign-out keeps it.
    expect(await archive.refreshes()).toBe(200);
    // It names this browser only: the other device stays signed in.
    expect(await homeStatus(other.device, b)).toBe(200);
  });

  test('another site can sign no one out: a GET changes nothing, a POST needs the form’s token', async () => {
    const account = await a.createReadyAccount();
    const { device } = await homeOn(account);
    for (const site of ['/account', '/console']) {
      const link = await device.request(`${a.url}${site}/logout`);
      expect([link.status, link.headers.get('location')]).toEqual([303, site]);
      const forged = await device.request(`${a.url}${site}/logout`, { method: 'POST', body: '_csrf=forged', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(forged.status).toBe(403);
      expect(forged.headers.get('location')).toBeNull();
    }
    expect(await homeStatus(device, a)).toBe(200);
  });

  test('signing out of the account home only ends it there: the replayed cookie is refused while single sign-on goes on', async () => {
    const account = await a.createReadyAccount();
    const { device } = await homeOn(account);
    const portal = await relyingParty(device, { name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
    const replay = copyOf(device);
    const confirm = await pressSignOut(device, `${a.url}/account`);
    await device.submit(confirm, /\/session\/end\/confirm$/, {});

    for (const node of [a, b]) expect(await homeStatus(replay, node)).toBe(302);
    expect(await portal.refreshes()).toBe(200);
    expect(codeFrom((await startAuthorization(device, a, portal.rp, { prompt: 'none' })).page)).toBeTruthy();
  });
});

describe('a sign-out and a relying party that does not answer', () => {
  // A sign-out is one unit of work (its SAML sessions end with it). The provider told the relying
  // parties inside it, so one that hangs held its transaction (on PGlite, the one connection, so
  // everyone waited) until the delivery timed out; now they are told once it has committed.
  test('while the delivery hangs the database serves others; the relying party is told after the commit', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let arrived = false;
    const receiver = await backchannelReceiver(async () => {
      arrived = true;
      await held;
    });
    const gaveUp = () => a.logs.join('').includes('back-channel logout delivery failed');
    try {
      const account = await a.createReadyAccount();
      const { device } = await homeOn(account);
      const mail = await relyingParty(device, { name: 'Slow mail', backchannelLogoutUri: receiver.url, redirectUris: ['http://127.0.0.1:9/slow-mail'] });
      const confirm = await pressSignOut(device, `${a.url}/account`);
      const done = device.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
      const deadline = Date.now() + 2000;
      while (!arrived && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(arrived).toBe(true);
      // The delivery is in flight and not yet given up on (its timeout is 2.5 s): the database answers.
      expect((await a.deps.accounts.findById(account.id))?.common_id).toBe(account.commonId);
      expect(gaveUp()).toBe(false);
      release();
      expect(new URL((await done).url).pathname).toBe('/session/end/success');
      const [logoutToken] = await receiver.waitFor(1);
      expect(JSON.parse(Buffer.from(logoutToken.split('.')[1], 'base64url').toString()).aud).toBe(mail.rp.clientId);
      expect(await mail.refreshes()).toBe(400);
      expect(gaveUp()).toBe(false);
    } finally {
      release();
      await receiver.close();
    }
  });
});

describe('operators and recovery end the account home on every device', () => {
  const actions: Array<[string, (account: Account) => Promise<unknown>]> = [
    ['suspension', (account) => operator(b, `/accounts/${account.commonId}/suspend`)],
    ['revocation', (account) => operator(b, `/accounts/${account.commonId}/revoke`, { reason: 'graduation' })],
    [
      'scheduled revocation',
      async (account) => {
        await operator(b, `/accounts/${account.commonId}/revoke`, { on: new Date().toISOString() });
        expect(await b.deps.revocations.applyDue(10)).toBe(1);
      },
    ],
    ['password reissue by an operator', (account) => operator(b, `/accounts/${account.commonId}/reissue-password`, { checked: 'student card', by: 'desk' })],
    [
      'password reset (recovery)',
      async (account) => {
        const email = `reset-${account.commonId}@example.com`;
        await b.deps.accounts.setRecoveryEmail(account.id, email);
        const browser = new Browser(b.url);
        const first = await browser.visit(`${b.url}/recover`);
        const codePage = await browser.submit(first, /\/recover\/start$/, { identifier: account.commonId, captcha: await solveCaptcha(first) });
        const passwordPage = await browser.submit(codePage, /\/recover\/code$/, { code: mailedCode(b.mails, email) });
        const next = 'Recovered-Password-42';
        expect((await browser.submit(passwordPage, /\/recover\/password$/, { new: next, confirm: next })).html).toContain('Your password was changed');
      },
    ],
    ['identity-verification recovery', async (account) => expect((await b.deps.idv.recover((await b.deps.accounts.findById(account.id))!, 'mfa')).ok).toBe(true)],
  ];

  test.each(actions)('%s on node B', async (_name, act) => {
    const account = await a.createReadyAccount();
    const { device } = await homeOn(account);
    const other = await homeOn(account);
    expect(await homeStatus(device, b)).toBe(200);
    await act(account);
    for (const { device: each } of [{ device }, other]) {
      expect(await homeStatus(each, a)).toBe(302);
      expect(await landsOnSignIn(each)).toBe(true);
    }
  });

  test('a new password whose sessions could not be ended is not made: the old password and sessions stay, and the retry makes both', async () => {
    const account = await a.createReadyAccount();
    const { device } = await homeOn(account);
    const before = (await b.deps.accounts.findById(account.id))!.password_hash;
    const reissue = () =>
      fetch(`${b.url}/admin/api/accounts/${account.commonId}/reissue-password`, {
        method: 'POST',
        headers: { authorization: `Bearer ${b.operatorToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ checked: 'student card', by: 'desk' }),
      });
    const db = b.deps.database.db;
    // The database times out the end of this account's sessions (its last step: marking the time).
    const stop = await refuseWrites(db, 'refuse_sessions_end', { table: 'account', on: 'update', when: `new.id = '${account.id}' and new.sessions_ended_at is distinct from old.sessions_ended_at` });
    try {
      expect((await reissue()).status).toBe(503);
    } finally {
      await stop();
    }
    expect((await b.deps.accounts.findById(account.id))!.password_hash).toBe(before);
    expect(await homeStatus(device, a)).toBe(200);
    expect((await reissue()).status).toBe(200);
    expect((await b.deps.accounts.findById(account.id))!.password_hash).not.toBe(before);
    expect(await homeStatus(device, a)).toBe(302);
  });
});

describe('a change that needs a fresh second factor', () => {
  test('is refused once the session has ended, though the factor was shown moments before', async () => {
    // Enrolments and the step-up below in one time step: at its change the step-up's code would be one used.
    await freshTotpStep();
    const account = await a.createReadyAccount();
    const now = () => Math.floor(Date.now() / 1000);
    const phone = a.deps.mfa.pendingTotp();
    await a.deps.mfa.confirmTotp(account.id, phone.sealed, await generate({ secret: phone.secret, epoch: now() }), 'Phone app');
    const tablet = a.deps.mfa.pendingTotp();
    await a.deps.mfa.confirmTotp(account.id, tablet.sealed, await generate({ secret: tablet.secret, epoch: now() + 30 }), 'Tablet app');
    const { device, page } = await homeOn(account, '/account/security');
    // Removing a method asks for a fresh second factor first.
    const stepUp = await device.submit(page, /\/remove$/, {});
    expect(stepUp.html).toContain('Verify your identity');
    // The enrolments used the current and the next time step: the previous one is still free.
    const fresh = await device.submit(stepUp, /\/totp$/, { code: await generate({ secret: phone.secret, epoch: now() - 30 }) });
    expect(new URL(fresh.url).pathname).toBe('/account/security');

    const second = await homeOn(account);
    expect((await postOn(b, second.device, second.page, /\/account\/sign-out-everywhere$/)).status).toBe(303);

    const removed = await postOn(b, device, fresh, /\/remove$/);
    expect(removed.status).toBe(302);
    expect(removed.headers.get('location')).toBe('/account/login');
    expect(await a.deps.mfa.factors(account.id)).toHaveLength(2);
    expect(await auditActions(account.id)).not.toContain('mfa.removed');
  });

  test('holds the session while it is made: a sign-out on the other node waits, and is recorded after the change', async () => {
    const account = await a.createReadyAccount();
    await homeOn(account);
    const { payload } = await a.deps.database.db.selectFrom('oidc_payload').select('payload').where('model', '=', 'Session').where('account_id', '=', account.id).executeTakeFirstOrThrow();
    const sid = (payload as { authorizations: Record<string, { sid: string }> }).authorizations[ACCOUNT_CLIENT_ID].sid;

    let held!: () => void;
    let finish!: () => void;
    const holding = new Promise<void>((resolve) => {
      held = resolve;
    });
    const gate = new Promise<void>((resolve) => {
      finish = resolve;
    });
    // What the account home does for an app password, with a pause between the check and the change.
    const change = a.deps.database.unitOfWork(
      async () => {
        const live = await a.deps.payloads.authorizationLive(account.id, ACCOUNT_CLIENT_ID, sid, { hold: true });
        held();
        await gate;
        await a.deps.audit.record({ actor: 'self', action: 'app_password.created', accountId: account.id });
        return live;
      },
      (live) => live,
    );
    await holding;
    let ended = false;
    const signOut = b.deps.payloads.revokeAccount(account.id).then(async () => {
      ended = true;
      await b.deps.audit.record({ actor: 'self', action: 'sessions.ended', accountId: account.id });
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ended).toBe(false);
    finish();
    expect(await change).toBe(true);
    await signOut;
    expect(await auditActions(account.id)).toEqual(['app_password.created', 'sessions.ended']);
    expect(await a.deps.payloads.authorizationLive(account.id, ACCOUNT_CLIENT_ID, sid)).toBe(false);
  });
});
