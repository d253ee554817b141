import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generate } from 'otplib';
import type { DenialReason } from '../../src/access/access-rules.ts';
import { denialDescription } from '../../src/access/denial-text.ts';
import type { ClientInput } from '../../src/client/client.service.ts';
import { adminApi, type RunningAkamon, startAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { codeFrom, enterCredentials, redeem, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';

/**
 * Guards issue 13, point 2: the client's access rules decide every path, not only the sign-in.
 * Each rule row signs a person in while the rule lets them through (so every path is shown to
 * work first), then changes the rule through the admin API as an operator would, and expects
 * each path to refuse: the authorization endpoint (with the session already there), prompt=none,
 * the refresh grant, userinfo, introspection of the access and of the refresh token, and the
 * password grant of the same --legacy-password client, logged with the rule's reason code.
 */

let akamon: RunningAkamon;
beforeAll(async () => {
  akamon = await startAkamon();
});
afterAll(() => akamon.close());

type Client = Awaited<ReturnType<RunningAkamon['createClient']>>;
type Account = Awaited<ReturnType<RunningAkamon['createReadyAccount']>>;

const admin = async (path: string, method: string, body?: unknown) => {
  expect((await adminApi(akamon, method, path, body)).status).toBeLessThan(300);
};

interface Rule {
  name: string;
  /** The code the sign-in log and the relying party's error_description carry. */
  reason: DenialReason;
  affiliation: string;
  /** The account's fields of src/account/account-fields.ts (its department). */
  profile?: Record<string, unknown>;
  client: ClientInput;
  /** Before the sign-in: what lets this person through for now. */
  setUp?(client: Client, account: Account): Promise<void>;
  /** The operator's change that shuts the person out. */
  apply(client: Client, account: Account): Promise<void>;
  /** The person can act on it (take the education, show a factor): prompt=none says interaction_required, and no 53003 page refuses. */
  actionable?: 'security education' | 'second factor';
}

const RULES: Rule[] = [
  {
    name: 'affiliation not allowed',
    reason: 'affiliation_not_allowed',
    affiliation: 'staff',
    client: {},
    apply: (client) => admin(`/clients/${client.clientId}`, 'PATCH', { allowedAffiliations: ['student'] }),
  },
  {
    name: 'status not allowed',
    reason: 'status_not_allowed',
    affiliation: 'student',
    // A suspended account that this client admits (the suspension itself ends sessions and tokens, so it comes first).
    client: { allowedStatuses: ['active', 'suspended'] },
    setUp: (_client, account) => admin(`/accounts/${account.commonId}/suspend`, 'POST'),
    apply: (client) => admin(`/clients/${client.clientId}`, 'PATCH', { allowedStatuses: ['active'] }),
  },
  {
    name: 'deny list',
    reason: 'account_denied',
    affiliation: 'student',
    client: {},
    apply: (client, account) => admin(`/clients/${client.clientId}/accounts`, 'POST', { commonId: account.commonId, effect: 'deny' }),
  },
  {
    name: 'not on the allow list',
    reason: 'affiliation_not_allowed',
    affiliation: 'guest',
    client: { allowedAffiliations: ['faculty'] },
    setUp: (client, account) => admin(`/clients/${client.clientId}/accounts`, 'POST', { commonId: account.commonId, effect: 'allow' }),
    apply: (client, account) => admin(`/clients/${client.clientId}/accounts/${account.commonId}`, 'DELETE'),
  },
  {
    name: 'moved to another department',
    reason: 'department_not_allowed',
    affiliation: 'faculty',
    // A department below the allowed one is in; the operator then records the person's move.
    profile: { department: 'eng/mech' },
    client: { allowedDepartments: ['eng'] },
    apply: (_client, account) => admin(`/accounts/${account.commonId}`, 'PATCH', { department: 'med' }),
  },
  {
    name: 'department no longer allowed',
    reason: 'department_not_allowed',
    affiliation: 'student',
    profile: { department: 'sci/phys' },
    client: { allowedDepartments: ['eng', 'sci'] },
    apply: (client) => admin(`/clients/${client.clientId}`, 'PATCH', { allowedDepartments: ['eng'] }),
  },
  {
    name: 'education missing',
    reason: 'education_required',
    affiliation: 'student',
    client: {},
    apply: (client) => admin(`/clients/${client.clientId}`, 'PATCH', { requireEducation: true }),
    actionable: 'security education',
  },
  {
    name: 'MFA required but absent',
    reason: 'mfa_required',
    affiliation: 'student',
    client: {},
    apply: (client) => admin(`/clients/${client.clientId}`, 'PATCH', { requireMfa: true }),
    actionable: 'second factor',
  },
];

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

async function introspect(client: Client, token: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${akamon.url}/token/introspection`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

const passwordGrant = (client: Client, account: Account) => tokenRequest(akamon, client, { grant_type: 'password', username: account.commonId, password: account.password, scope: 'openid' });
const lastSignin = async (account: Account) => (await akamon.deps.signinLog.list({ accountId: account.id, limit: 1 }))[0];
const errorOf = (url: string) => new URL(url).searchParams.get('error');

describe.each(RULES)('$name', (rule) => {
  let client: Client;
  let account: Account;
  let browser: Browser;
  let tokens: { access: string; refresh: string };

  // One sign-in while the rule still lets the person through; every path is shown to work first.
  beforeAll(async () => {
    client = await akamon.createClient({ name: `Matrix ${rule.name}`, legacyPassword: true, redirectUris: [`http://127.0.0.1:9/${rule.reason}`], ...rule.client });
    account = await akamon.createReadyAccount({ affiliation: rule.affiliation, profile: rule.profile });
    await rule.setUp?.(client, account);
    browser = new Browser(akamon.url);
    const result = await signIn(browser, akamon, client, account);
    const redeemed = await redeem(akamon, client, result.code!, result.verifier);
    expect(redeemed.status).toBe(200);
    const refreshed = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: redeemed.body.refresh_token });
    expect(refreshed.status).toBe(200);
    tokens = { access: refreshed.body.access_token, refresh: refreshed.body.refresh_token };
    expect((await fetch(`${akamon.url}/me`, bearer(tokens.access))).status).toBe(200);
    expect(await introspect(client, tokens.access)).toMatchObject({ active: true, sub: account.id });
    expect(await introspect(client, tokens.refresh)).toMatchObject({ active: true, sub: account.id });
    expect((await passwordGrant(client, account)).status).toBe(200);
    expect(codeFrom((await startAuthorization(browser, akamon, client, { prompt: 'none' })).page)).toBeTruthy();

    await rule.apply(client, account);
  });

  test('authorization endpoint', async () => {
    const { page } = await startAuthorization(browser, akamon, client);
    if (rule.actionable === 'second factor') {
      // Not a refusal: the person is asked to set up a second factor first.
      expect(page.html).toContain('More information required');
      return;
    }
    expect(page.status).toBe(403);
    expect(page.html).toContain('53003');
    if (rule.actionable === 'security education') expect(page.html).toContain('information-security education');
    expect(await lastSignin(account)).toMatchObject({ result: 'failure', reason: `access_denied.${rule.reason}`, client_id: client.clientId });
    // Leaving the page is a refusal that says so (point 6), not a cancel.
    const back = await browser.submit(page, /\/leave$/, {});
    const url = new URL(back.url);
    expect(url.origin + url.pathname).toBe(client.redirectUri);
    expect(url.searchParams.get('error')).toBe('access_denied');
    expect(url.searchParams.get('error_description')).toBe(denialDescription(rule.reason));
  });

  test('prompt=none', async () => {
    const { page } = await startAuthorization(browser, akamon, client, { prompt: 'none' });
    expect(errorOf(page.url)).toBe(rule.actionable ? 'interaction_required' : 'access_denied');
  });

  test('userinfo', async () => {
    expect((await fetch(`${akamon.url}/me`, bearer(tokens.access))).status).toBe(401);
  });

  test('introspection of the access token', async () => {
    expect(await introspect(client, tokens.access)).toEqual({ active: false });
  });

  test('introspection of the refresh token', async () => {
    expect(await introspect(client, tokens.refresh)).toEqual({ active: false });
  });

  test('refresh grant', async () => {
    const refused = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh });
    expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(refused.body.access_token).toBeUndefined();
  });

  test('password grant', async () => {
    const refused = await passwordGrant(client, account);
    expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(refused.body.access_token).toBeUndefined();
    expect(await lastSignin(account)).toMatchObject({ result: 'failure', reason: `access_denied.${rule.reason}`, client_id: client.clientId });
    // The same answer as a wrong password: the back-end learns nothing about the account.
    const wrong = await passwordGrant(client, { ...account, password: 'Not-the-password-1' });
    expect(wrong).toEqual({ ...refused, headers: wrong.headers });
  });
});

// The other side of the MFA row: the demand is met by what the sign-in behind a token showed, so
// the rule does not end tokens that satisfy it.
test('at a client that demands MFA, tokens from a sign-in with a second factor or from an app password keep working on every path', async () => {
  const client = await akamon.createClient({ name: 'Matrix MFA met', legacyPassword: true, requireMfa: true, redirectUris: ['http://127.0.0.1:9/mfa-met'] });
  const account = await akamon.createReadyAccount();
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ';
  const serial = `MATRIX${Date.now()}`;
  await akamon.deps.tokens.add({ serial, secret, digits: 6, period: 30 });
  await akamon.deps.tokens.assign(serial, account.id);
  const browser = new Browser(akamon.url);
  const started = await startAuthorization(browser, akamon, client);
  const verify = await enterCredentials(browser, started.page, account.commonId, account.password);
  expect(verify.html).toContain('Verify your identity');
  const back = await browser.submit(verify, /\/totp$/, { code: await generate({ secret }) });
  const redeemed = await redeem(akamon, client, codeFrom(back), started.verifier);
  expect(redeemed.status).toBe(200);
  // The access token keeps the amr of its sign-in; the refresh grant passes it on.
  expect(await introspect(client, redeemed.body.access_token)).toMatchObject({ active: true, amr: ['pwd', 'otp'] });
  const refreshed = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: redeemed.body.refresh_token });
  expect(refreshed.status).toBe(200);
  expect(await introspect(client, refreshed.body.access_token)).toMatchObject({ active: true, amr: ['pwd', 'otp'] });
  expect(await introspect(client, refreshed.body.refresh_token)).toMatchObject({ active: true });
  expect((await fetch(`${akamon.url}/me`, bearer(refreshed.body.access_token))).status).toBe(200);

  // The password grant: an account with a factor never gets in with its real password; an app password meets the demand.
  expect((await passwordGrant(client, account)).body.error).toBe('invalid_grant');
  const { secret: appPassword } = await akamon.deps.appPasswords.create(account.id, 'Mail');
  const granted = await passwordGrant(client, { ...account, password: appPassword });
  expect(granted.status).toBe(200);
  expect(await introspect(client, granted.body.access_token)).toMatchObject({ active: true, amr: ['app'] });
  expect((await fetch(`${akamon.url}/me`, bearer(granted.body.access_token))).status).toBe(200);
});
