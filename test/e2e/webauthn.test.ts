import { afterAll, beforeAll, expect, test } from '@jest/globals';
import type { Browser as ChromiumBrowser, Page } from 'playwright-core';
import type { RunningAkamon } from '../support/akamon.ts';
import { type BrowserWorld, startBrowserWorld } from '../support/browser-world.ts';
import { authorizeUrl, pkce } from '../support/browser.ts';
import { redeem } from '../support/flows.ts';
import { mailedCode } from '../support/smtp-sink.ts';
import { ACR_MFA } from '../../src/mfa/assurance.ts';

// A security key registered and used through chromium's virtual authenticator (the DevTools
// protocol's WebAuthn domain). WebAuthn needs a domain as relying-party id, so the issuer is
// http://localhost here (a secure context, like https).

let world: BrowserWorld;
let akamon: RunningAkamon;
let browser: ChromiumBrowser;
let relyingPartyOrigin: string;

beforeAll(async () => {
  // localhost goes straight to the IPv4 loopback the test servers listen on.
  world = await startBrowserWorld({ env: { AKAMON_ISSUER: 'http://localhost:{port}' }, chromiumArgs: ['--host-resolver-rules=MAP localhost 127.0.0.1'], relyingPartyHost: 'localhost' });
  ({ akamon, browser, relyingPartyOrigin } = world);
}, 120_000);

afterAll(() => world?.close());

const claimsOf = (idToken: string) => JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());

/** Signs in at the MFA client up to the MFA page; returns the code the relying party receives. */
async function signIn(page: Page, client: { clientId: string; redirectUri: string }, account: { commonId: string; password: string }, atMfaPage: (page: Page) => Promise<void>) {
  const { verifier, challenge } = pkce();
  await page.goto(authorizeUrl(akamon.config.issuer, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256' }));
  await page.getByLabel('Common ID').fill(account.commonId);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Password', { exact: true }).fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await atMfaPage(page);
  // Wait until the relying party's page has loaded, not just been requested: a navigation still
  // in flight would otherwise cut into the next sign-in's first page.
  await page.waitForURL((url) => url.href.startsWith(client.redirectUri));
  const code = new URL(page.url()).searchParams.get('code')!;
  return { code, verifier };
}

test('a security key is registered at enrolment and then used at the next sign-in', async () => {
  const vpn = await akamon.createClient({ name: 'UTokyo VPN', requireMfa: true, redirectUris: [`${relyingPartyOrigin}/vpn`] });
  const account = await akamon.createReadyAccount();
  const context = await browser.newContext({ locale: 'en-US' });
  try {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'usb', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });

    const first = await signIn(page, vpn, account, async (p) => {
      // Wait for the new page itself: right after a click the old page may still be showing.
      await p.getByRole('heading', { level: 1, name: 'More information required' }).waitFor();
      await p.getByRole('radio', { name: /Security key or passkey/ }).check();
      await p.getByRole('button', { name: 'Next' }).click();
      await p.getByRole('button', { name: 'Register a security key or passkey' }).click();
      // Then a recovery email, confirmed with the code the SMTP server received, and the finish page.
      const email = `key-${Date.now()}@example.com`;
      await p.getByLabel(/Email address/).fill(email);
      await p.getByRole('button', { name: 'Send a code to this address' }).click();
      await p.getByLabel('6-digit code').fill(mailedCode(akamon.mails, email));
      await p.getByRole('button', { name: 'Confirm and continue' }).click();
      await p.getByRole('heading', { level: 1, name: 'App password (optional)' }).waitFor();
      await p.getByRole('button', { name: 'Skip this step' }).click();
      await p.getByRole('heading', { level: 1, name: 'Your security info is set up' }).waitFor();
      await p.getByRole('button', { name: 'Done' }).click();
    });
    const tokens = await redeem(akamon, vpn, first.code, first.verifier);
    expect(claimsOf(tokens.body.id_token)).toMatchObject({ amr: ['pwd', 'hwk'], acr: ACR_MFA });
    const [factor] = await akamon.deps.mfa.factors(account.id);
    expect(factor).toMatchObject({ kind: 'webauthn', label: 'Security key or passkey' });
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(Buffer.from(credentials[0].credentialId, 'base64').toString('base64url')).toBe(factor.credential_id);

    // A new browser session: the key is the default method, with no code form since there is no app.
    await context.clearCookies();
    const second = await signIn(page, vpn, account, async (p) => {
      await p.getByRole('heading', { level: 1, name: 'Verify your identity' }).waitFor();
      // The password's answer takes the interaction's own address, so a reload asks for the page and sends no password.
      await p.waitForURL(/\/interaction\/[^/]+$/);
      const reloaded = p.waitForRequest((request) => request.isNavigationRequest());
      await p.reload();
      expect([(await reloaded).method(), new URL((await reloaded).url()).pathname]).toEqual(['GET', new URL(p.url()).pathname]);
      await p.getByRole('heading', { level: 1, name: 'Verify your identity' }).waitFor();
      await expect(p.getByLabel('6-digit code').count()).resolves.toBe(0);
      await p.getByRole('button', { name: 'Use your security key or passkey' }).click();
    });
    const again = await redeem(akamon, vpn, second.code, second.verifier);
    expect(claimsOf(again.body.id_token).amr).toEqual(['pwd', 'hwk']);
    const [used] = await akamon.deps.mfa.factors(account.id);
    expect(Number(used.sign_count)).toBeGreaterThan(Number(factor.sign_count));
    expect(used.last_used_at).not.toBeNull();
  } finally {
    await context.close();
  }
}, 120_000);
