import { expect } from '@jest/globals';
import type { BrowserContext, Page as ChromiumPage } from 'playwright-core';
import type { Role, Scope } from '../../src/operator/permissions.ts';
import type { RunningAkamon } from './akamon.ts';
import { Browser, type Page } from './browser.ts';
import { enterCredentials } from './flows.ts';
import { SoftwareAuthenticator, webauthnOptions } from './webauthn.ts';

export type ConsolePerson = Awaited<ReturnType<RunningAkamon['createReadyAccount']>>;

/**
 * A person with a console role, signed in to the console over HTTP as the console demands: password,
 * then the security key Akamon registered for them. `path` is the console page asked for first; the
 * sign-in comes back to it.
 */
export async function consoleOperator(akamon: RunningAkamon, role: Role, scope: Scope | null, path = '/console'): Promise<{ person: ConsolePerson; browser: Browser; landing: Page }> {
  const person = await akamon.createReadyAccount({ name: `Operator ${role}`, profile: { department: 'eng' } });
  await akamon.deps.operators.grant(person.id, role, scope, 'test');
  const authenticator = new SoftwareAuthenticator(akamon.url);
  const row = (await akamon.deps.accounts.findById(person.id))!;
  const options = await akamon.deps.mfa.webauthnRegistrationOptions(row);
  const registration = authenticator.register(options as Parameters<SoftwareAuthenticator['register']>[0]);
  expect((await akamon.deps.mfa.confirmWebauthn(person.id, registration, options.challenge, 'Desk key')).ok).toBe(true);
  const browser = new Browser(akamon.url);
  const login = await browser.visit(path);
  const challenge = await enterCredentials(browser, login, person.commonId, person.password);
  const assertion = authenticator.assert(webauthnOptions<{ challenge: string; rpId: string }>(challenge.html));
  const landing = await browser.submit(challenge, /\/webauthn$/, { credential: assertion });
  return { person, browser, landing };
}

/**
 * The same person for chromium: their passkey registered in Akamon and placed in the context's
 * virtual authenticator (a USB one: chromium offers a credential only to an authenticator of a
 * transport it was registered with). The issuer must be http://localhost:<port>, the rpId "localhost".
 */
export async function passkeyOperator(akamon: RunningAkamon, context: BrowserContext, page: ChromiumPage, role: Role, scope: Scope | null, name: string) {
  const person = await akamon.createReadyAccount({ name, profile: { department: 'eng' } });
  await akamon.deps.operators.grant(person.id, role, scope, 'test');
  const key = new SoftwareAuthenticator(akamon.config.issuer);
  const row = (await akamon.deps.accounts.findById(person.id))!;
  const options = await akamon.deps.mfa.webauthnRegistrationOptions(row);
  expect((await akamon.deps.mfa.confirmWebauthn(person.id, key.register(options as { challenge: string; rp: { id: string } }), options.challenge, 'Passkey')).ok).toBe(true);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'usb', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  await cdp.send('WebAuthn.addCredential', {
    authenticatorId,
    credential: { credentialId: Buffer.from(key.credentialId, 'base64url').toString('base64'), isResidentCredential: false, rpId: 'localhost', privateKey: key.privateKeyPkcs8(), signCount: 0 },
  });
  return person;
}
