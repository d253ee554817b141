import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as client from 'openid-client';
import { en } from '../../src/i18n/en.ts';
import { type RunningAkamon, startAkamon } from '../support/akamon.ts';
import { Browser, type Page } from '../support/browser.ts';
import { enterCredentials } from '../support/flows.ts';
import { codeFlow, discover } from '../support/openid-rp.ts';

/**
 * Consent to a third-party relying party lasts per account and client, not per sign-in session:
 * a new session (after a sign-out, or in another browser) is not asked again for what the person
 * allowed, only for what is new; whatever ends the account's grants (sign out everywhere,
 * suspension) makes the next sign-in ask again, and the access rules still decide.
 */

let akamon: RunningAkamon;
beforeAll(async () => {
  akamon = await startAkamon();
});
afterAll(() => akamon.close());

const PROFILE = { familyName: 'Yamada', givenName: 'Hanako', department: 'eng/mech', entitlements: ['urn:mace:dir:entitlement:common-lib-terms'] };
const ASKED = { scope: 'openid profile email' };

async function thirdParty(name: string, rules: { allowedAffiliations?: Array<'student' | 'staff'> } = {}) {
  const rp = await akamon.createClient({ name, firstParty: false, redirectUris: [`http://127.0.0.1:9/${name.toLowerCase().replaceAll(' ', '-')}`], ...rules });
  return { rp, config: await discover(akamon, rp) };
}

/** The items the consent page lists, as the person reads them. */
function listed(consent: Page | undefined): string[] {
  const list = /<ul class="scope-list"[^>]*>([\s\S]*?)<\/ul>/.exec(consent?.html ?? '')?.[1] ?? '';
  return [...list.matchAll(/<li>([\s\S]*?)<\/li>/g)].map((item) => item[1]!.trim());
}

/** RP-initiated logout of this browser's whole session (the "Yes, sign me out" button). */
async function logOut(browser: Browser, clientId: string) {
  const confirm = await browser.visit(`${akamon.url}/session/end?client_id=${encodeURIComponent(clientId)}`);
  const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
  expect(done.status).toBe(200);
}

const userinfoStatus = async (accessToken: string) => (await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status;

/** "Sign out everywhere" from the account home, as the person does it. */
async function signOutEverywhere(account: { commonId: string; password: string }) {
  const device = new Browser(akamon.url);
  const home = await enterCredentials(device, await device.visit(`${akamon.url}/account`), account.commonId, account.password);
  expect(new URL(home.url).pathname).toBe('/account');
  const out = await device.submit(home, /\/account\/sign-out-everywhere$/, {});
  expect(out.status).toBe(200);
}

describe('remembered consent', () => {
  test('after a sign-out, and in a new browser, the same client is not asked again and gets the same claims; the sign-out still ended its tokens', async () => {
    const { rp, config } = await thirdParty('Library Portal');
    const account = await akamon.createReadyAccount({ profile: PROFILE });
    const first = await codeFlow(akamon, config, rp.redirectUri, account, ASKED);
    expect(listed(first.consent)).toEqual([en['scope.openid'], en['scope.profile'], en['scope.email']]);
    const claims = await client.fetchUserInfo(config, first.tokens.access_token, account.id);
    expect(claims).toMatchObject({ sub: account.id, family_name: 'Yamada', email: `${account.commonId}@mail.example.ac.jp` });

    // Another browser signed in meanwhile: its tokens belong to a grant of its own session.
    const other = await codeFlow(akamon, config, rp.redirectUri, account, ASKED);
    expect(other.consent).toBeUndefined();

    await logOut(first.browser, rp.clientId);
    expect(await userinfoStatus(first.tokens.access_token)).toBe(401);
    expect(await userinfoStatus(other.tokens.access_token)).toBe(200);

    // Both sessions ended: the consent outlives them.
    await logOut(other.browser, rp.clientId);
    expect(await userinfoStatus(other.tokens.access_token)).toBe(401);
    const sessions = await akamon.deps.database.db.selectFrom('oidc_payload').select('id').where('model', '=', 'Session').where('account_id', '=', account.id).execute();
    expect(sessions).toEqual([]);

    const again = await codeFlow(akamon, config, rp.redirectUri, account, ASKED);
    expect(again.consent).toBeUndefined();
    expect(again.tokens.scope).toBe('openid profile email');
    expect(await client.fetchUserInfo(config, again.tokens.access_token, account.id)).toEqual(claims);
  });

  test('a new scope asked in a later session: the page lists only it, and after Allow nothing is asked', async () => {
    const { rp, config } = await thirdParty('Course Reviews');
    const account = await akamon.createReadyAccount({ profile: PROFILE });
    await codeFlow(akamon, config, rp.redirectUri, account, ASKED);

    const wider = { scope: 'openid profile email eduperson' };
    const more = await codeFlow(akamon, config, rp.redirectUri, account, wider);
    expect(listed(more.consent)).toEqual([en['scope.eduperson']]);
    expect(await client.fetchUserInfo(config, more.tokens.access_token, account.id)).toMatchObject({ family_name: 'Yamada', department: 'eng/mech' });

    const later = await codeFlow(akamon, config, rp.redirectUri, account, wider);
    expect(later.consent).toBeUndefined();
    expect(later.tokens.scope).toBe('openid profile email eduperson');
  });

  test('a scope the person withheld stays withheld and is not asked again', async () => {
    const { rp, config } = await thirdParty('Room Booking');
    const account = await akamon.createReadyAccount({ profile: PROFILE });
    // shoe_size is a claim of no scope: the grant records it as withheld (consent.ts).
    const claims = JSON.stringify({ userinfo: { shoe_size: null } });
    const first = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid', claims });
    expect(listed(first.consent)).toEqual([en['scope.openid']]);
    const again = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid', claims });
    expect(again.consent).toBeUndefined();
    expect(await client.fetchUserInfo(config, again.tokens.access_token, account.id)).toEqual({ sub: account.id });
  });

  test('after "sign out everywhere" the next sign-in asks again for everything', async () => {
    const { rp, config } = await thirdParty('Lab Notebook');
    const account = await akamon.createReadyAccount({ profile: PROFILE });
    await codeFlow(akamon, config, rp.redirectUri, account, ASKED);
    await signOutEverywhere(account);
    const grants = await akamon.deps.database.db.selectFrom('oidc_payload').select('id').where('model', '=', 'Grant').where('account_id', '=', account.id).execute();
    expect(grants).toEqual([]);

    const next = await codeFlow(akamon, config, rp.redirectUri, account, ASKED);
    expect(listed(next.consent)).toEqual([en['scope.openid'], en['scope.profile'], en['scope.email']]);
  });

  test('after a suspension is lifted the next sign-in asks again', async () => {
    const { rp, config } = await thirdParty('Print Service');
    const account = await akamon.createReadyAccount({ profile: PROFILE });
    await codeFlow(akamon, config, rp.redirectUri, account, ASKED);
    await akamon.deps.accountService.setStatus(account.commonId, 'suspended');
    await akamon.deps.accountService.setStatus(account.commonId, 'active');

    const next = await codeFlow(akamon, config, rp.redirectUri, account, ASKED);
    expect(listed(next.consent)).toEqual([en['scope.openid'], en['scope.profile'], en['scope.email']]);
  });

  test('remembered consent never overrides a denial: rules that now exclude the account refuse it', async () => {
    const { rp, config } = await thirdParty('Student Union', { allowedAffiliations: ['student'] });
    const account = await akamon.createReadyAccount({ affiliation: 'student', profile: PROFILE });
    await codeFlow(akamon, config, rp.redirectUri, account, ASKED);
    await akamon.deps.database.db
      .updateTable('client')
      .set({ allowed_affiliations: ['staff'] })
      .where('client_id', '=', rp.clientId)
      .execute();

    await expect(codeFlow(akamon, config, rp.redirectUri, account, ASKED)).rejects.toThrow(/expected a redirect/);
  });
});
