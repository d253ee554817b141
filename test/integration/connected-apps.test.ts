import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import type { DB } from '../../src/db/schema.ts';
import { testDatabaseUrl } from '../support/database.ts';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { backchannelReceiver } from '../support/backchannel.ts';
import { Browser, decode, type Page } from '../support/browser.ts';
import { codeFrom, enterCredentials, redeem, startAuthorization, tokenRequest } from '../support/flows.ts';

/**
 * "Connected systems" on the account home: each system the account has granted access to, what it
 * may use, and "Remove access", which ends its grants and every token under them at once (a lost
 * phone's mail app, a third-party service no longer used) and nothing else.
 */

let akamon: RunningAkamon;
beforeAll(async () => {
  // Back-channel logout goes to a loopback receiver.
  akamon = await startAkamon({ env: { AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'true' } });
});
afterAll(() => akamon.close());

type Account = Awaited<ReturnType<RunningAkamon['createReadyAccount']>>;

async function signedInHome(account: Account): Promise<Browser> {
  const browser = new Browser(akamon.url);
  const page = await enterCredentials(browser, await browser.visit(`${akamon.url}/account`), account.commonId, account.password);
  expect(new URL(page.url).pathname).toBe('/account');
  return browser;
}

type Connected = Awaited<ReturnType<typeof connect>>;

/** A system the browser's person signs in to (allowing access when asked), and its refresh of the tokens it got. */
async function connect(browser: Browser, input: Parameters<RunningAkamon['createClient']>[0], params: Record<string, string> = {}) {
  const rp = await akamon.createClient(input);
  let started = await startAuthorization(browser, akamon, rp, params);
  if (/name="decision"/.test(started.page.html)) started = { ...started, page: await browser.submit(started.page, /\/decide$/, { decision: 'approve' }) };
  const tokens = await redeem(akamon, rp, codeFrom(started.page), started.verifier);
  const refreshes = async () => (await tokenRequest(akamon, rp, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token })).status;
  const userinfo = async () => (await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } })).status;
  return { rp, refreshes, userinfo };
}

const listed = (page: Page) => [...page.html.matchAll(/<li>\s*<strong>([^<]+)<\/strong>/g)].map((m) => decode(m[1]!));
const audited = async (accountId: string) => (await akamon.deps.audit.list({ accountId, limit: 50 })).filter((e) => e.action === 'grant.revoked');

describe('the list', () => {
  test('names each system with what it may use and whether it stays connected; Akamon’s own sites are not on it', async () => {
    const account = await akamon.createReadyAccount();
    const browser = await signedInHome(account);
    expect(listed(await browser.visit(`${akamon.url}/account/apps`))).toEqual([]);
    await connect(browser, { name: 'Reading list', firstParty: false, redirectUris: ['http://127.0.0.1:9/reading'] }, { scope: 'openid email offline_access', prompt: 'consent' });
    await connect(browser, { name: 'Portal', nameJa: 'ポータル', redirectUris: ['http://127.0.0.1:9/portal'] });
    const page = await browser.visit(`${akamon.url}/account/apps`);
    expect(page.status).toBe(200);
    expect(listed(page)).toEqual(['Reading list', 'Portal']);
    const reading = page.html.slice(page.html.indexOf('Reading list'), page.html.indexOf('Portal'));
    expect(reading).toContain('Your email address');
    expect(reading).toContain('Stay connected while you are away');
    // The account home's own grant is not a system to cut off.
    expect(page.html).not.toContain('Akamon account');
    // In Japanese, with the system's Japanese name.
    browser.acceptLanguage = 'ja';
    const ja = await browser.visit(`${akamon.url}/account/apps`);
    expect(ja.html).toContain('<html lang="ja">');
    expect(listed(ja)).toContain('ポータル');
    expect(ja.html).toContain('接続中のシステム');
  });

  test('the account home links to it; signed out, the page leads to the sign-in and back', async () => {
    const account = await akamon.createReadyAccount();
    const browser = await signedInHome(account);
    expect((await browser.visit(`${akamon.url}/account`)).html).toContain('href="/account/apps"');
    const stranger = await new Browser(akamon.url).request(`${akamon.url}/account/apps`);
    expect(stranger.status).toBe(302);
    expect(stranger.headers.get('location')).toBe('/account/login?back=%2Faccount%2Fapps');
  });
});

describe('removing access', () => {
  test('ends that system’s tokens at once, and only its, with an audit record; a reload sends nothing again; its next sign-in asks again', async () => {
    const account = await akamon.createReadyAccount();
    const browser = await signedInHome(account);
    const reading = await connect(browser, { name: 'Reading list', firstParty: false, redirectUris: ['http://127.0.0.1:9/reading'] }, { scope: 'openid email offline_access', prompt: 'consent' });
    const archive = await connect(browser, { name: 'Archive', firstParty: false, redirectUris: ['http://127.0.0.1:9/archive'] }, { scope: 'openid offline_access', prompt: 'consent' });
    const page = await browser.visit(`${akamon.url}/account/apps`);
    const done = await browser.submit(page, new RegExp(`/account/apps/${reading.rp.clientId}/remove$`), {});
    expect(new URL(done.url).pathname).toBe('/account/apps');
    expect(done.html).toContain('Access was removed from Reading list.');
    expect(listed(done)).toEqual(['Archive']);
    expect([await reading.refreshes(), await reading.userinfo()]).toEqual([400, 401]);
    expect([await archive.refreshes(), await archive.userinfo()]).toEqual([200, 200]);
    expect((await audited(account.id)).map((e) => e.details)).toEqual([{ clientId: reading.rp.clientId, grants: 1, signIns: 1 }]);
    // Said once, to this browser: a reload, or a crafted address, says nothing.
    expect((await browser.visit(`${akamon.url}/account/apps`)).html).not.toContain('Access was removed');
    for (const named of [archive.rp.clientId, 'akamon-account']) expect((await browser.visit(`${akamon.url}/account/apps?removed=${named}`)).html).not.toContain('Access was removed');
    // Its next sign-in starts from nothing: the person is asked to allow access again.
    const again = await startAuthorization(browser, akamon, reading.rp, { scope: 'openid email offline_access' });
    expect(again.page.html).toContain('name="decision"');
  });

  test('a system with back-channel logout is told its sign-in ended; the session goes on for the others', async () => {
    const receiver = await backchannelReceiver();
    try {
      const account = await akamon.createReadyAccount();
      const browser = await signedInHome(account);
      const mail = await connect(browser, { name: 'Mail', backchannelLogoutUri: receiver.url, redirectUris: ['http://127.0.0.1:9/mail'] });
      const portal = await connect(browser, { name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
      await browser.submit(await browser.visit(`${akamon.url}/account/apps`), new RegExp(`/account/apps/${mail.rp.clientId}/remove$`), {});
      const [logoutToken] = await receiver.waitFor(1);
      const claims = JSON.parse(Buffer.from(logoutToken!.split('.')[1]!, 'base64url').toString());
      expect([claims.aud, claims.sub]).toEqual([mail.rp.clientId, expect.any(String)]);
      expect(claims.sid).toEqual(expect.any(String));
      // The person is still signed in: the portal signs in silently, the account home stays.
      expect(codeFrom((await startAuthorization(browser, akamon, portal.rp, { prompt: 'none' })).page)).toBeTruthy();
      expect((await browser.visit(`${akamon.url}/account`)).status).toBe(200);
    } finally {
      await receiver.close();
    }
  });

  test('refused without the form’s token, for another account’s system, and for Akamon’s own sites: nothing ends', async () => {
    const account = await akamon.createReadyAccount();
    const other = await akamon.createReadyAccount();
    const browser = await signedInHome(account);
    const otherBrowser = await signedInHome(other);
    const theirs = await connect(otherBrowser, { name: 'Their app', firstParty: false, redirectUris: ['http://127.0.0.1:9/theirs'] }, { scope: 'openid offline_access', prompt: 'consent' });
    const mine = await connect(browser, { name: 'My app', firstParty: false, redirectUris: ['http://127.0.0.1:9/mine'] }, { scope: 'openid offline_access', prompt: 'consent' });
    const forged = await browser.request(`${akamon.url}/account/apps/${mine.rp.clientId}/remove`, {
      method: 'POST',
      body: '_csrf=forged',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(forged.status).toBe(403);
    const page = await browser.visit(`${akamon.url}/account/apps`);
    const form = browser.form(page, new RegExp(`/account/apps/${mine.rp.clientId}/remove$`), {});
    for (const target of [theirs.rp.clientId, 'akamon-account', 'x'.repeat(3000), '%00', 'no-such-system']) {
      const sent = await browser.request(form.url.replace(encodeURIComponent(mine.rp.clientId), encodeURIComponent(target)), {
        method: 'POST',
        body: form.body,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect({ target: target.slice(0, 20), status: sent.status < 500 }).toEqual({ target: target.slice(0, 20), status: true });
    }
    expect([await theirs.refreshes(), await mine.refreshes()]).toEqual([200, 200]);
    expect(await audited(account.id)).toEqual([]);
    expect(await audited(other.id)).toEqual([]);
    // The account home's own sign-in still stands.
    expect((await browser.visit(`${akamon.url}/account`)).status).toBe(200);
  });
});

/** Resolves once `count` requests wait for a row lock of the provider's table (PostgreSQL; fails after 10 s). */
async function waitingForLocks(db: Kysely<DB>, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    // Inside a transaction the activity view is read once: read it afresh each time.
    await sql`select pg_stat_clear_snapshot()`.execute(db);
    const { rows } = await sql<{ n: string }>`select count(*) as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%oidc_payload%'`.execute(db);
    if (Number(rows[0]!.n) >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`fewer than ${count} requests wait for a lock`);
}

// Races on PostgreSQL (on PGlite the one connection orders everything). Found by a review of the page.
const onServer = testDatabaseUrl ? describe : describe.skip;
onServer('removing access while something else holds the account', () => {
  // whileLive holds the account home's session FOR SHARE and revokeClient updates it: two removals
  // at once (two tabs, a double click) each waited for the other's share, and one was a deadlock (503).
  test('two removals at once from one browser both land, one after the other', async () => {
    const account = await akamon.createReadyAccount();
    const browser = await signedInHome(account);
    const mail = await connect(browser, { name: 'Mail', redirectUris: ['http://127.0.0.1:9/race-mail'] });
    const portal = await connect(browser, { name: 'Portal', redirectUris: ['http://127.0.0.1:9/race-portal'] });
    const page = await browser.visit(`${akamon.url}/account/apps`);
    const forms = [mail, portal].map(({ rp }) => browser.form(page, new RegExp(`/account/apps/${rp.clientId}/remove$`), {}));
    const db = akamon.deps.database.db;
    let answers: Array<Promise<Response>> = [];
    // Another change of the account holds its sessions until both removals wait.
    await db.transaction().execute(async (trx) => {
      await sql`select id from oidc_payload where model = 'Session' and account_id = ${account.id} for share`.execute(trx);
      answers = forms.map(({ url, body }) => browser.request(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }));
      await waitingForLocks(db, 2);
    });
    expect(await Promise.all(answers.map(async (answer) => (await answer).status))).toEqual([303, 303]);
    expect(listed(await browser.visit(`${akamon.url}/account/apps`))).toEqual([]);
    expect(await audited(account.id)).toHaveLength(2);
  }, 30_000);

  /**
   * The person's account with a third-party system it allowed, and `signIn` run (another browser's
   * sign-in to that system) while, the moment that sign-in has read the consent to start from, the
   * person presses Remove access in the first browser. Answers the removal and what `signIn` gave.
   */
  async function removingDuring<T>(signIn: (account: Account, rp: Connected['rp']) => Promise<T>) {
    const account = await akamon.createReadyAccount();
    const home = await signedInHome(account);
    const reading = await connect(home, { name: 'Reading list', firstParty: false, redirectUris: [`http://127.0.0.1:9/race-${account.commonId}`] }, { scope: 'openid email', prompt: 'consent' });
    const removal = home.form(await home.visit(`${akamon.url}/account/apps`), new RegExp(`/account/apps/${reading.rp.clientId}/remove$`), {});
    const payloads = akamon.deps.payloads as unknown as { liveGrants: (accountId: string, clientId: string) => Promise<unknown[]> };
    const original = payloads.liveGrants;
    let removed: Promise<Response> | undefined;
    payloads.liveGrants = async function (accountId: string, clientId: string) {
      const earlier = await original.call(this, accountId, clientId);
      if (clientId === reading.rp.clientId && !removed) {
        removed = home.request(removal.url, { method: 'POST', body: removal.body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        // Until the removal waits for this sign-in (or, were nothing to hold it, has ended).
        await Promise.race([removed, waitingForLocks(akamon.deps.database.db, 1).catch(() => undefined)]);
      }
      return earlier;
    };
    let signedIn: T;
    try {
      signedIn = await signIn(account, reading.rp);
    } finally {
      payloads.liveGrants = original;
    }
    expect((await removed!).status).toBe(303);
    expect((await akamon.deps.payloads.connectedClients(account.id)).map((c) => c.clientId)).not.toContain(reading.rp.clientId);
    return { rp: reading.rp, signedIn };
  }

  // A sign-in's grant starts from the consent the account's live grants hold (grants.ts): read,
  // then saved as a new grant in the sign-in's unit. A removal committed in between deleted the old
  // grants and the new one, made from the consent just withdrawn, came after: connected again.
  test('a sign-in in flight as access is removed: the removal waits for it and takes its grant too', async () => {
    const { rp, signedIn } = await removingDuring(async (account, rp) => {
      const other = new Browser(akamon.url);
      const started = await startAuthorization(other, akamon, rp, { scope: 'openid email' });
      return { verifier: started.verifier, page: await enterCredentials(other, started.page, account.commonId, account.password) };
    });
    // The code that sign-in got went with its grant.
    expect((await redeem(akamon, rp, codeFrom(signedIn.page), signedIn.verifier)).status).toBe(400);
  }, 30_000);

  // The same on a silent sign-in (prompt=none from a browser signed in to Akamon but not yet to the
  // system): no resume's transaction there, so the read and the save were two.
  test('a silent sign-in in flight as access is removed: its grant goes too', async () => {
    const { rp, signedIn } = await removingDuring(async (account, rp) => startAuthorization(await signedInHome(account), akamon, rp, { scope: 'openid email', prompt: 'none' }));
    const code = codeFrom(signedIn.page);
    expect((await redeem(akamon, rp, code, signedIn.verifier)).status).toBe(400);
  }, 30_000);
});
