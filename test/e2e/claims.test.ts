import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as client from 'openid-client';
import { SCOPE_CLAIMS } from '../../src/oidc/claims.ts';
import { adminApi, type RunningAkamon, startAkamon } from '../support/akamon.ts';
import { tokenRequest } from '../support/flows.ts';
import { codeFlow, discover } from '../support/openid-rp.ts';

// Issue 16 point 3: the claims of each scope, language-tagged names chosen by claims_locales,
// email_verified, the eduPerson scope, and unknown scopes and claims ignored. A real relying party
// (openid-client v6) over loopback HTTP reads them from the ID token, userinfo and a refresh.

const REALM = 'utac.example.ac.jp';
let akamon: RunningAkamon;
beforeAll(async () => {
  akamon = await startAkamon({ env: { AKAMON_REALM_SUFFIX: REALM } });
});
afterAll(() => akamon.close());

const admin = (path: string, method: string, body?: unknown) => adminApi(akamon, method, path, body);

const HANAKO = {
  familyName: 'Yamada',
  givenName: 'Hanako',
  familyNameJa: '山田',
  givenNameJa: '花子',
  familyNameKana: 'ヤマダ',
  givenNameKana: 'ハナコ',
  department: 'eng/mech',
  entitlements: ['urn:mace:dir:entitlement:common-lib-terms'],
};

async function relyingParty(name: string, extra: Parameters<RunningAkamon['createClient']>[0] = {}) {
  const rp = await akamon.createClient({ name, redirectUris: [`http://127.0.0.1:9/${name.toLowerCase().replaceAll(' ', '-')}`], ...extra });
  return { rp, config: await discover(akamon, rp) };
}

const loggedLines = (message: string) => akamon.logs.map((line) => JSON.parse(line) as Record<string, any>).filter((line) => line.msg === message);

describe('claims and scopes', () => {
  test('discovery lists every scope and claim Akamon releases, and the claim locales', async () => {
    const { config } = await relyingParty('Discovery');
    const metadata = config.serverMetadata();
    expect([...(metadata.scopes_supported ?? [])].sort()).toEqual(['eduperson', 'email', 'offline_access', 'openid', 'profile']);
    const claims = new Set(metadata.claims_supported);
    for (const claim of Object.values(SCOPE_CLAIMS).flat()) expect(claims).toContain(claim);
    for (const claim of ['email_verified', 'given_name', 'family_name', 'name#ja-Kana-JP', 'family_name#ja-Jpan-JP', 'eduperson_scoped_affiliation', 'department']) expect(claims).toContain(claim);
    expect(metadata.claims_locales_supported).toEqual(['en', 'ja', 'ja-Jpan-JP', 'ja-Kana-JP']);
    expect(metadata.claims_parameter_supported).toBe(true);
  });

  test('profile, email and eduperson: the ID token and userinfo carry every claim of the granted scopes', async () => {
    const { rp, config } = await relyingParty('Library');
    const account = await akamon.createReadyAccount({ name: 'YAMADA Hanako', affiliation: 'faculty', profile: HANAKO });
    const { tokens } = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid profile email eduperson' });
    const expected = {
      sub: account.id,
      name: 'YAMADA Hanako',
      family_name: 'Yamada',
      given_name: 'Hanako',
      'name#en': 'Hanako Yamada',
      'name#ja-Jpan-JP': '山田 花子',
      'name#ja-Kana-JP': 'ヤマダ ハナコ',
      'family_name#ja-Jpan-JP': '山田',
      'family_name#ja-Kana-JP': 'ヤマダ',
      'given_name#ja-Jpan-JP': '花子',
      'given_name#ja-Kana-JP': 'ハナコ',
      preferred_username: account.commonId,
      affiliation: 'faculty',
      department: 'eng/mech',
      email: `${account.commonId}@mail.example.ac.jp`,
      email_verified: true,
      eduperson_principal_name: `${account.commonId}@${REALM}`,
      eduperson_affiliation: ['faculty', 'employee', 'member'],
      eduperson_scoped_affiliation: [`faculty@${REALM}`, `employee@${REALM}`, `member@${REALM}`],
      eduperson_entitlement: ['urn:mace:dir:entitlement:common-lib-terms'],
    };
    expect(tokens.scope?.split(' ').sort()).toEqual(['eduperson', 'email', 'openid', 'profile']);
    expect(tokens.claims()).toMatchObject(expected);
    expect(await client.fetchUserInfo(config, tokens.access_token, account.id)).toMatchObject(expected);
  });

  test('claims_locales picks the untagged names, in the ID token, in userinfo and after a refresh; the tagged ones stay', async () => {
    const { rp, config } = await relyingParty('Student Affairs');
    const account = await akamon.createReadyAccount({ name: 'YAMADA Hanako', profile: HANAKO });
    const japanese = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid profile', claims_locales: 'ja' });
    const inJapanese = { name: '山田 花子', family_name: '山田', given_name: '花子', 'name#en': 'Hanako Yamada', 'name#ja-Kana-JP': 'ヤマダ ハナコ' };
    expect(japanese.tokens.claims()).toMatchObject(inJapanese);
    expect(await client.fetchUserInfo(config, japanese.tokens.access_token, account.id)).toMatchObject(inJapanese);
    const refreshed = await client.refreshTokenGrant(config, japanese.tokens.refresh_token!);
    expect(refreshed.claims()).toMatchObject(inJapanese);
    expect(await client.fetchUserInfo(config, refreshed.access_token, account.id)).toMatchObject(inJapanese);

    // The same session, another preference: the reading first, an unsupported language passed over.
    const reading = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid profile', claims_locales: 'fr ja-Kana-JP' }, japanese.browser);
    expect(reading.tokens.claims()).toMatchObject({ name: 'ヤマダ ハナコ', family_name: 'ヤマダ', given_name: 'ハナコ', 'name#ja-Jpan-JP': '山田 花子' });
    const latin = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid profile', claims_locales: 'en-US' }, japanese.browser);
    expect(latin.tokens.claims()).toMatchObject({ name: 'Hanako Yamada', family_name: 'Yamada' });
    const none = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid profile' }, japanese.browser);
    expect(none.tokens.claims()).toMatchObject({ name: 'YAMADA Hanako', family_name: 'Yamada' });
  });

  test('an account with only a name keeps its name claim and gets no parts', async () => {
    const { rp, config } = await relyingParty('Old System');
    const account = await akamon.createReadyAccount({ name: 'Taro Akamon', affiliation: 'staff' });
    const { tokens } = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid profile eduperson', claims_locales: 'ja' });
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, account.id);
    expect(userinfo).toEqual({
      sub: account.id,
      name: 'Taro Akamon',
      preferred_username: account.commonId,
      affiliation: 'staff',
      eduperson_principal_name: `${account.commonId}@${REALM}`,
      eduperson_affiliation: ['staff', 'employee', 'member'],
      eduperson_scoped_affiliation: [`staff@${REALM}`, `employee@${REALM}`, `member@${REALM}`],
    });
  });

  test('without the scopes, none of their claims', async () => {
    const { rp, config } = await relyingParty('Minimal');
    const account = await akamon.createReadyAccount({ profile: HANAKO });
    const { tokens } = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid' });
    const idToken = tokens.claims()!;
    for (const claim of ['name', 'family_name', 'name#ja-Kana-JP', 'email', 'email_verified', 'department', 'eduperson_principal_name', 'eduperson_affiliation'])
      expect(idToken[claim]).toBeUndefined();
    expect(await client.fetchUserInfo(config, tokens.access_token, account.id)).toEqual({ sub: account.id });
  });

  test('email_verified is false for an address the import marked unchecked, and true at the next request once the operator vouches for it', async () => {
    const { rp, config } = await relyingParty('Mail');
    const account = await akamon.createReadyAccount({ email: 'typed-in@example.com', profile: { emailVerified: false } });
    const { tokens } = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid email' });
    expect(tokens.claims()).toMatchObject({ email: 'typed-in@example.com', email_verified: false });
    expect(await client.fetchUserInfo(config, tokens.access_token, account.id)).toEqual({ sub: account.id, email: 'typed-in@example.com', email_verified: false });
    expect((await admin(`/accounts/${account.commonId}`, 'PATCH', { emailVerified: true })).status).toBe(200);
    expect(await client.fetchUserInfo(config, tokens.access_token, account.id)).toEqual({ sub: account.id, email: 'typed-in@example.com', email_verified: true });

    const withoutAddress = await akamon.createReadyAccount({ email: null });
    const other = await codeFlow(akamon, config, rp.redirectUri, withoutAddress, { scope: 'openid email' });
    expect(await client.fetchUserInfo(config, other.tokens.access_token, withoutAddress.id)).toEqual({ sub: withoutAddress.id });
  });

  test('unknown scopes are ignored and logged for the operator; unknown claims in the claims parameter are ignored', async () => {
    const { rp, config } = await relyingParty('Groupware');
    const account = await akamon.createReadyAccount({ profile: HANAKO });
    const claims = JSON.stringify({ id_token: { shoe_size: null, 'name#ja-Kana-JP': { essential: true }, department: null }, userinfo: { 'family_name#ja-Kana-JP': null, shoe_size: null } });
    const { tokens } = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid groups https://example.ac.jp/api', claims });
    expect(tokens.scope).toBe('openid');
    const idToken = tokens.claims()!;
    expect(idToken).toMatchObject({ 'name#ja-Kana-JP': 'ヤマダ ハナコ', department: 'eng/mech' });
    expect(idToken.shoe_size).toBeUndefined();
    expect(idToken.name).toBeUndefined();
    expect(await client.fetchUserInfo(config, tokens.access_token, account.id)).toEqual({ sub: account.id, 'family_name#ja-Kana-JP': 'ヤマダ' });
    expect(loggedLines('requested scopes ignored')).toContainEqual(expect.objectContaining({ clientId: rp.clientId, scopes: ['groups', 'https://example.ac.jp/api'] }));
  });

  test('a third-party client asking for eduperson: the consent page says what it is, in English and Japanese', async () => {
    const { rp, config } = await relyingParty('Journal Platform', { firstParty: false });
    const account = await akamon.createReadyAccount({ affiliation: 'student', profile: { entitlements: ['urn:mace:dir:entitlement:common-lib-terms'] } });
    const { tokens, consent } = await codeFlow(akamon, config, rp.redirectUri, account, { scope: 'openid eduperson' });
    expect(consent?.html).toContain('Your membership of the university');
    expect(tokens.claims()).toMatchObject({ eduperson_affiliation: ['student', 'member'], eduperson_entitlement: ['urn:mace:dir:entitlement:common-lib-terms'] });

    const other = await akamon.createReadyAccount();
    const japanese = await codeFlow(akamon, config, rp.redirectUri, other, { scope: 'openid eduperson', ui_locales: 'ja' });
    expect(japanese.consent?.html).toContain('大学の構成員であること');
  });

  test('the password grant takes the same scopes, ignores and logs others; userinfo answers them', async () => {
    const rp = await akamon.createClient({ name: 'Wi-Fi', legacyPassword: true, redirectUris: ['http://127.0.0.1:9/wifi'] });
    const account = await akamon.createReadyAccount({ affiliation: 'guest', profile: HANAKO });
    const granted = await tokenRequest(akamon, rp, { grant_type: 'password', username: account.commonId, password: account.password, scope: 'openid eduperson groups email eduperson' });
    expect(granted.status).toBe(200);
    expect(granted.body.scope).toBe('openid eduperson email');
    const userinfo = await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${granted.body.access_token}` } });
    expect(await userinfo.json()).toEqual({
      sub: account.id,
      email: `${account.commonId}@mail.example.ac.jp`,
      email_verified: true,
      eduperson_principal_name: `${account.commonId}@${REALM}`,
      eduperson_affiliation: ['affiliate'],
      eduperson_scoped_affiliation: [`affiliate@${REALM}`],
      eduperson_entitlement: ['urn:mace:dir:entitlement:common-lib-terms'],
    });
    expect(loggedLines('requested scopes ignored')).toContainEqual(expect.objectContaining({ clientId: rp.clientId, scopes: ['groups'] }));
  });
});
