import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as client from 'openid-client';
import { en } from '../../src/i18n/en.ts';
import { ja } from '../../src/i18n/ja.ts';
import { type RunningAkamon, startAkamon } from '../support/akamon.ts';
import type { Page } from '../support/browser.ts';
import { codeFlow, discover } from '../support/openid-rp.ts';

// Security regression (review finding, MEDIUM): a third-party relying party asking scope=openid with
// claims={"userinfo":{"eduperson_entitlement":null,...}} got a consent page naming only "your
// identifier", and after Allow received entitlements, department, Common ID and email. Guards that
// the consent page names what each claim of the claims parameter reveals (the text of the scope
// that covers it), that Allow grants exactly that, and that a claim of no scope is not released.

let akamon: RunningAkamon;
beforeAll(async () => {
  akamon = await startAkamon();
});
afterAll(() => akamon.close());

const PROFILE = { familyName: 'Yamada', givenName: 'Hanako', familyNameKana: 'ヤマダ', givenNameKana: 'ハナコ', department: 'eng/mech', entitlements: ['urn:mace:dir:entitlement:common-lib-terms'] };

async function thirdParty(name: string) {
  const rp = await akamon.createClient({ name, firstParty: false, redirectUris: [`http://127.0.0.1:9/${name.toLowerCase().replaceAll(' ', '-')}`] });
  return { rp, config: await discover(akamon, rp) };
}

/** The items the consent page lists, as the person reads them. */
function listed(consent: Page | undefined): string[] {
  const list = /<ul class="scope-list"[^>]*>([\s\S]*?)<\/ul>/.exec(consent?.html ?? '')?.[1] ?? '';
  return [...list.matchAll(/<li>([\s\S]*?)<\/li>/g)].map((item) => item[1]!.trim());
}

describe('consent for claims asked for by the claims parameter', () => {
  test('scope=openid with claims for entitlements, department, Common ID and email: the page names each, and userinfo carries exactly those', async () => {
    const { rp, config } = await thirdParty('Survey Tool');
    const account = await akamon.createReadyAccount({ affiliation: 'student', profile: PROFILE });
    // shoe_size is a claim of no scope: nothing shows it, nothing releases it.
    const claims = JSON.stringify({ userinfo: { eduperson_entitlement: null, department: null, email: null, preferred_username: null, shoe_size: null } });
    const { tokens, consent, browser } = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid', claims });

    expect(listed(consent)).toEqual([en['scope.openid'], en['scope.profile'], en['scope.email'], en['scope.eduperson']]);
    const page = listed(consent).join('\n');
    for (const item of ['identifier', 'department', 'Common ID', 'email address', 'rights the university has recorded']) expect(page).toContain(item);

    const shown = {
      sub: account.id,
      eduperson_entitlement: ['urn:mace:dir:entitlement:common-lib-terms'],
      department: 'eng/mech',
      email: `${account.commonId}@mail.example.ac.jp`,
      preferred_username: account.commonId,
    };
    expect(tokens.scope).toBe('openid');
    expect(await client.fetchUserInfo(config, tokens.access_token, account.id)).toEqual(shown);
    const idToken = tokens.claims()!;
    for (const claim of ['eduperson_entitlement', 'department', 'email', 'preferred_username', 'shoe_size', 'name']) expect(idToken[claim]).toBeUndefined();

    // The grant records what the person allowed: the same request again asks nothing more.
    const again = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid', claims }, browser);
    expect(again.consent).toBeUndefined();
    expect(await client.fetchUserInfo(config, again.tokens.access_token, account.id)).toEqual(shown);
  });

  test('a language-tagged name goes with its base claim: the Japanese page names the profile, and only that name is released', async () => {
    const { rp, config } = await thirdParty('Reading Room');
    const account = await akamon.createReadyAccount({ profile: PROFILE });
    const claims = JSON.stringify({ id_token: { 'family_name#ja-Kana-JP': null } });
    const { tokens, consent } = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid', claims, ui_locales: 'ja' });

    expect(listed(consent)).toEqual([ja['scope.openid'], ja['scope.profile']]);
    const idToken = tokens.claims()!;
    expect(idToken['family_name#ja-Kana-JP']).toBe('ヤマダ');
    for (const claim of ['family_name', 'given_name#ja-Kana-JP', 'name', 'department', 'email']) expect(idToken[claim]).toBeUndefined();
    expect(await client.fetchUserInfo(config, tokens.access_token, account.id)).toEqual({ sub: account.id });
  });
});
