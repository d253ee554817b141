import zlib from 'node:zlib';
import { afterAll, beforeAll, expect } from '@jest/globals';
import { DOMParser, type Element } from '@xmldom/xmldom';
import type { Browser as ChromiumBrowser, Page as ChromiumPage } from 'playwright-core';
import { NS, STATUS } from '../../src/saml/constants.ts';
import { adminApi, startAkamon, type RunningAkamon } from './akamon.ts';
import { launchChromium } from './chromium.ts';
import { akamonSessions } from './relying-party.ts';

/** A SAML SP under test (mellon, Shibboleth): where its answers go and its protected page. */
export interface SpUnderTest {
  acsUrl: string;
  protectedUrl: string;
  /** Its logs, printed when a case fails. */
  output(): string;
}

/**
 * A browser window (a fresh chromium context: no cookies) and what went over the wire in it: the
 * SAML messages sent over HTTP-Redirect (the SP's AuthnRequests and LogoutRequests, Akamon's
 * LogoutResponses) with their SigAlg, the SAML Responses Akamon's page posted to the SP's consumer
 * service, the passwords sent to Akamon, and how often the SP served its protected page.
 */
export interface BrowserWindow {
  page: ChromiumPage;
  redirected: Array<{ endpoint: string; root: Element; sigAlg: string | null }>;
  responses: string[];
  passwordsSent: number;
  protectedServed: number;
}

export const parseXml = (xml: string): Element => new DOMParser().parseFromString(xml, 'text/xml').documentElement!;
export const textOf = (root: Element, ns: string, name: string) => root.getElementsByTagNameNS(ns, name)[0]?.textContent?.trim();

/** The `NAME=value` lines of an SP's attribute page (the test CGI prints its environment so), by name. */
export function pageVariables(text: string): Map<string, string> {
  return new Map(
    text
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
  );
}

/** The messages of a window that went to `endpoint` over HTTP-Redirect, parsed. */
export const sentTo = (window: BrowserWindow, endpoint: string) => window.redirected.filter((m) => m.endpoint === endpoint);

/** Akamon's identifier and password pages, as a person fills them in. */
export async function enterPassword(page: ChromiumPage, account: { commonId: string; password: string }): Promise<void> {
  await page.getByLabel('Common ID').fill(account.commonId);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Password', { exact: true }).fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** The windows of one test file: its Akamon, SP and chromium are read when a window opens (set in beforeAll). */
export function spWindows(under: () => { akamon: RunningAkamon; sp: SpUnderTest; chromium: ChromiumBrowser }) {
  return {
    /** Runs `body` in a new window; on failure prints where the browser is and what Akamon and the SP logged. */
    async inWindow(body: (window: BrowserWindow) => Promise<void>): Promise<void> {
      const { akamon, sp, chromium } = under();
      const context = await chromium.newContext({ locale: 'en-US' });
      const page = await context.newPage();
      try {
        const window: BrowserWindow = { page, redirected: [], responses: [], passwordsSent: 0, protectedServed: 0 };
        page.on('request', (request) => {
          const url = new URL(request.url());
          const message = url.searchParams.get('SAMLRequest') ?? url.searchParams.get('SAMLResponse');
          if (message) {
            const root = parseXml(zlib.inflateRawSync(Buffer.from(message, 'base64')).toString('utf8'));
            window.redirected.push({ endpoint: `${url.origin}${url.pathname}`, root, sigAlg: url.searchParams.get('SigAlg') });
          }
          if (url.href === sp.acsUrl && request.method() === 'POST')
            window.responses.push(Buffer.from(new URLSearchParams(request.postData() ?? '').get('SAMLResponse') ?? '', 'base64').toString('utf8'));
          if (url.origin === akamon.url && url.pathname.endsWith('/password') && request.method() === 'POST') window.passwordsSent += 1;
        });
        page.on('response', (response) => {
          if (response.url() === sp.protectedUrl && response.status() === 200) window.protectedServed += 1;
        });
        await body(window);
      } catch (error) {
        const text =
          (await page
            .locator('body')
            .textContent({ timeout: 1000 })
            .catch(() => null)) ?? '';
        process.stderr.write(`The browser is at ${page.url()}:\n${text.slice(0, 1500)}\nAkamon log (last 30 lines):\n${akamon.logs.slice(-30).join('')}\nSP:\n${sp.output().slice(-6000)}\n`);
        throw error;
      } finally {
        await context.close();
      }
    },

    /** The SP's protected page: the SP sends the browser to Akamon, which shows its sign-in page. */
    async startAtSp(window: BrowserWindow): Promise<void> {
      const { akamon, sp } = under();
      await window.page.goto(sp.protectedUrl);
      await window.page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
      expect(window.page.url().startsWith(`${akamon.url}/interaction/`)).toBe(true);
    },

    /** The SP's protected page once the browser has arrived there, read by the SP's own reader. */
    async arrived<T>(page: ChromiumPage, read: (text: string) => T): Promise<T> {
      await page.waitForURL(under().sp.protectedUrl);
      return read((await page.locator('body').textContent()) ?? '');
    },
  };
}

/**
 * The Akamon (with `realm`), SP and chromium of a test file: started in its beforeAll, the SP from
 * Akamon's metadata and registered as `name` releasing `attributes`, then handed to `ready` (for the
 * file's variables); closed in its afterAll, Akamon last. Answers the file's windows. The setup
 * every SP test file would write again.
 */
export function spWorldForFile<S extends SpUnderTest & { url: string; metadataXml: string; logoutUrl(returnTo: string): string; stop(): Promise<void> }>(
  options: { realm: string; name: string; attributes: string[]; startSp(idpMetadataXml: string): Promise<S> },
  ready: (world: { akamon: RunningAkamon; sp: S }) => void,
) {
  let akamon: RunningAkamon | undefined;
  let sp: S | undefined;
  let chromium: ChromiumBrowser | undefined;
  beforeAll(async () => {
    akamon = await startAkamon({ env: { AKAMON_REALM_SUFFIX: options.realm } });
    const idpMetadataXml = await (await fetch(`${akamon.url}/saml/metadata`)).text();
    // One after the other: a chromium launched beside an SP that failed to start would be left running.
    sp = await options.startSp(idpMetadataXml);
    chromium = await launchChromium();
    const created = await adminApi(akamon, 'POST', '/clients', { protocol: 'saml', name: options.name, spMetadata: sp.metadataXml, attributes: options.attributes });
    expect(created.status).toBe(201);
    ready({ akamon, sp });
  }, 120_000);
  afterAll(async () => {
    try {
      await chromium?.close();
      await sp?.stop();
    } finally {
      await akamon?.close();
    }
  });
  const windows = spWindows(() => ({ akamon: akamon!, sp: sp!, chromium: chromium! }));
  return {
    ...windows,
    /**
     * Signs `account` in at the SP in `window` (its page read by `read`), then out through the SP's
     * logout URL back to its public page; Akamon's session lives in between and is gone after. Answers
     * the page, the LogoutRequest the SP sent Akamon and Akamon's LogoutResponse to `responseEndpoint`,
     * checked to answer it with success.
     */
    async signInAndOut<T>(window: BrowserWindow, account: { id: string; commonId: string; password: string }, read: (text: string) => T, responseEndpoint: string) {
      await windows.startAtSp(window);
      await enterPassword(window.page, account);
      const signedIn = await windows.arrived(window.page, read);
      expect(await akamonSessions(akamon!, account.id)).toHaveLength(1);

      await window.page.goto(sp!.logoutUrl(`${sp!.url}/`));
      await window.page.waitForURL(`${sp!.url}/`);
      await window.page.getByText('Public page').waitFor();
      const [request] = sentTo(window, `${akamon!.url}/saml/slo`);
      const [{ root: response }] = sentTo(window, responseEndpoint);
      expect(response.getAttribute('InResponseTo')).toBe(request.root.getAttribute('ID'));
      expect(response.getElementsByTagNameNS(NS.protocol, 'StatusCode')[0].getAttribute('Value')).toBe(STATUS.success);
      expect(await akamonSessions(akamon!, account.id)).toEqual([]);
      return { signedIn, request: request.root, sigAlg: request.sigAlg, response };
    },
  };
}
