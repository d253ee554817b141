import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { codeFrom, redeem, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';

// Two Akamon processes' worth of state (two apps, two ports, separate provider instances) on one
// database, as behind a load balancer: both use the same public issuer.
let a: RunningAkamon;
let b: RunningAkamon;

beforeAll(async () => {
  a = await startAkamon();
  b = await startAkamon({ share: a, env: { AKAMON_ISSUER: a.url } });
});
afterAll(async () => {
  await b.close();
  await a.close();
});

const jwksKids = async (url: string) => ((await (await fetch(`${url}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort();

test('a sign-in begun on one node finishes on the other, and tokens work on both', async () => {
  const client = await a.createClient();
  const account = await a.createReadyAccount();
  const onA = new Browser(a.url);
  const onB = new Browser(b.url, onA.cookies);
  const started = await startAuthorization(onA, a, client);
  const identifierOnB = { ...started.page, url: started.page.url.replace(a.url, b.url) };
  const passwordPage = await onB.submit(identifierOnB, /\/identifier$/, { identifier: account.commonId });
  expect(passwordPage.html).toMatch(/name="password"/);
  // The password is checked on B, which sends the browser to the resume URL: follow it on A.
  const form = /action="([^"]+\/password)"/.exec(passwordPage.html)![1];
  const csrf = /name="_csrf" value="([^"]+)"/.exec(passwordPage.html)![1];
  const posted = await onB.request(`${b.url}${form}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, password: account.password }),
  });
  expect(posted.status).toBe(303);
  const resumed = await onA.visit(posted.headers.get('location')!.replace(b.url, a.url));
  const code = codeFrom(resumed);

  const tokens = await redeem(b, client, code, started.verifier);
  expect(tokens.status).toBe(200);
  for (const node of [a, b]) {
    const userinfo = await fetch(`${node.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } });
    expect(userinfo.status).toBe(200);
    const introspection = await fetch(`${node.url}/token/introspection`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.body.access_token }),
    });
    expect(await introspection.json()).toMatchObject({ active: true, sub: account.id });
  }
});

test('a key rotated through one node is served by the other', async () => {
  const before = await jwksKids(b.url);
  const response = await fetch(`${a.url}/admin/api/keys/rotate`, { method: 'POST', headers: { authorization: `Bearer ${a.operatorToken}` } });
  expect(response.status).toBe(200);
  const { kids } = (await response.json()) as { kids: string[] };
  expect(kids).toHaveLength(2);
  expect(await jwksKids(a.url)).toEqual(expect.arrayContaining([...before, ...kids]));
  // B notices within its refresh interval (1 s in tests).
  const deadline = Date.now() + 5000;
  let seen: string[] = [];
  while (Date.now() < deadline) {
    await b.akamon.holder.refresh();
    seen = await jwksKids(b.url);
    if (kids.every((k) => seen.includes(k))) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(seen).toEqual(expect.arrayContaining([...before, ...kids]));
});

test('a password changed through one node is the only one that works on the other, at once', async () => {
  const account = await a.createReadyAccount();
  const next = 'Fresh-Password-2026';
  await a.deps.accountService.changePassword(account.id, account.password, next, next);
  const outcome = await b.deps.passwordSignin.signIn({ commonId: account.commonId, password: account.password, ip: '127.0.0.2', userAgent: null, clientId: null });
  expect(outcome.ok).toBe(false);
  const fresh = await b.deps.passwordSignin.signIn({ commonId: account.commonId, password: next, ip: '127.0.0.2', userAgent: null, clientId: null });
  expect(fresh.ok).toBe(true);
});

test('a rule changed through one node applies to the very next request at the other', async () => {
  const client = await a.createClient({ name: 'Shared RP', redirectUris: ['http://127.0.0.1:9/shared'] });
  const account = await a.createReadyAccount({ affiliation: 'staff' });
  const onA = new Browser(a.url);
  const onB = new Browser(b.url, onA.cookies);
  await signIn(onA, a, client, account);
  expect(codeFrom((await startAuthorization(onB, b, client, { prompt: 'none' })).page)).toBeTruthy();
  const changed = await fetch(`${a.url}/admin/api/clients/${client.clientId}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${a.operatorToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ allowedAffiliations: ['student'] }),
  });
  expect(changed.status).toBe(200);
  const denied = await startAuthorization(onB, b, client, { prompt: 'none' });
  expect(new URL(denied.page.url).searchParams.get('error')).toBe('access_denied');
});

// Guards issue 13, point 2: a rule changed through one node ends, at the other, every token and
// grant it now denies (userinfo, introspection of both tokens, refresh, the password grant).
test("a deny entry added through one node ends the account's tokens and password grant at the other, at once", async () => {
  const client = await a.createClient({ name: 'Shared mail', legacyPassword: true, redirectUris: ['http://127.0.0.1:9/shared-mail'] });
  const account = await a.createReadyAccount();
  const result = await signIn(new Browser(a.url), a, client, account);
  const tokens = (await redeem(a, client, result.code!, result.verifier)).body;
  const basic = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;
  const introspect = async (token: string) =>
    (await (
      await fetch(`${b.url}/token/introspection`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }) })
    ).json()) as {
      active: boolean;
    };
  const userinfo = async () => (await fetch(`${b.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status;
  const grant = () => tokenRequest(b, client, { grant_type: 'password', username: account.commonId, password: account.password });
  // B has said yes once already: whatever it kept from that must not outlive the change.
  expect(await userinfo()).toBe(200);
  expect((await introspect(tokens.access_token)).active).toBe(true);
  expect((await introspect(tokens.refresh_token)).active).toBe(true);
  expect((await grant()).status).toBe(200);

  const denied = await fetch(`${a.url}/admin/api/clients/${client.clientId}/accounts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${a.operatorToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ commonId: account.commonId, effect: 'deny' }),
  });
  expect(denied.status).toBe(200);
  expect(await userinfo()).toBe(401);
  expect(await introspect(tokens.access_token)).toEqual({ active: false });
  expect(await introspect(tokens.refresh_token)).toEqual({ active: false });
  expect((await tokenRequest(b, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).body.error).toBe('invalid_grant');
  expect((await grant()).body.error).toBe('invalid_grant');
  const [logged] = await b.deps.signinLog.list({ accountId: account.id, limit: 1 });
  expect(logged).toMatchObject({ result: 'failure', reason: 'access_denied.account_denied', client_id: client.clientId });
});
