import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generate } from 'otplib';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { authorizeUrl, Browser, pkce } from '../support/browser.ts';
import { chooseMethod, enterCredentials, finishEnrolment, secretOn, signIn, startAuthorization } from '../support/flows.ts';

// The first step drawn in GET /auth's own answer (interaction/router.ts drawFirstStep) is the page
// its address (/interaction/:uid, page-url.js) shows, as the 303 to that address gave before. Found
// by a review: the steps read the page's query, which in the authorization's answer was /auth's,
// the relying party's authorization URL with whatever else it carries.

let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;
let vpn: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  client = await akamon.createClient({ name: 'Learning System' });
  vpn = await akamon.createClient({ name: 'UTokyo VPN', requireMfa: true, redirectUris: ['http://127.0.0.1:9/vpn'] });
});
afterAll(() => akamon.close());

const totpAt = (secret: string) => generate({ secret, epoch: Math.floor(Date.now() / 1000) });

describe("GET /auth's drawn first step is the page of the interaction's own address, whatever else the authorization URL carries", () => {
  test('prompt=login with a live session and a stray account=other: the password page, not the identifier page', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    await signIn(browser, akamon, client, account);
    // `account` is no authorization parameter: the provider ignores it, and the interaction's own
    // address (where the drawn page moves the browser, and where a reload goes) shows the password page.
    const { page } = await startAuthorization(browser, akamon, client, { prompt: 'login', account: 'other' });
    expect(page.url).toMatch(/\/interaction\/[^/?]+$/);
    const reloaded = await browser.visit(page.url);
    expect([reloaded.status, /name="password"/.test(reloaded.html), reloaded.html.includes(account.commonId)]).toEqual([200, true, true]);
    expect([/name="password"/.test(page.html), /name="identifier"/.test(page.html)]).toEqual([true, false]);
  });

  test('a step-up at an MFA client with a stray help=1: the factor\'s page, not "I can\'t use any of these"', async () => {
    // An account with an authenticator app, signed in with a password only (a client that does not ask for MFA).
    const account = await akamon.createReadyAccount();
    const enrolling = new Browser(akamon.url);
    const enroll = await enterCredentials(enrolling, (await startAuthorization(enrolling, akamon, vpn)).page, account.commonId, account.password);
    const app = await chooseMethod(enrolling, enroll);
    await finishEnrolment(enrolling, akamon, await enrolling.submit(app, /\/totp$/, { code: await totpAt(secretOn(app)) }));
    const browser = new Browser(akamon.url);
    await signIn(browser, akamon, client, account);
    // The VPN demands MFA: mfa_verify is the first step at /auth.
    const { page } = await startAuthorization(browser, akamon, vpn, { help: '1' });
    expect(page.url).toMatch(/\/interaction\/[^/?]+$/);
    const reloaded = await browser.visit(page.url);
    expect([reloaded.status, reloaded.html.includes('Verify your identity'), /\/totp"/.test(reloaded.html)]).toEqual([200, true, true]);
    expect([page.html.includes('Verify your identity'), /\/totp"/.test(page.html)]).toEqual([true, true]);
  });

  test('a HEAD of the authorization (a link checker) gets the redirect and runs no step', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    await signIn(browser, akamon, client, account);
    const { challenge } = pkce();
    const answer = await browser.request(
      authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256', prompt: 'login' }),
      { method: 'HEAD' },
    );
    expect(answer.status).toBe(303);
    const uid = /^\/interaction\/([^/]+)$/.exec(answer.headers.get('location')!)![1]!;
    // prompt=login with a live session notes the Common ID as its page is drawn: not for a HEAD.
    const noted = await akamon.deps.database.db.selectFrom('interaction_state').select('uid').where('uid', '=', uid).execute();
    expect(noted).toEqual([]);
  });
});
