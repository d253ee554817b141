import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { expect } from '@jest/globals';
import { createLogger } from '../../src/shared/logger.ts';
import { startDevIdv, type DevIdv } from '../../src/idv/dev-provider.ts';
import { Browser, type Page } from './browser.ts';

/**
 * The development identity provider as the upstream of a test node: a real OpenID Connect server
 * on a loopback port, with the node registered as a client_secret_basic client (private_key_jwt is
 * tested against a hand-written provider). Pass `envFor` to startAkamon.
 */
export function upstreamIdv() {
  const holder: { idp?: DevIdv } = {};
  return {
    holder,
    async envFor(url: string): Promise<Record<string, string>> {
      const secret = randomBytes(32).toString('base64url');
      holder.idp = await startDevIdv({
        production: false,
        host: '127.0.0.1',
        port: 0,
        logger: createLogger(
          process.env.DEV_IDV_LOG ?? 'silent',
          process.env.DEV_IDV_LOG
            ? (process.stderr as never)
            : new Writable({
                write(_c, _e, done) {
                  done();
                },
              }),
        ),
        clients: [{ client_id: 'akamon-test', client_secret: secret, redirect_uris: [`${url}/idv/callback`] }],
      });
      return { AKAMON_IDV_ISSUER: holder.idp.issuer, AKAMON_IDV_CLIENT_ID: 'akamon-test', AKAMON_IDV_CLIENT_SECRET: secret };
    },
    close: () => holder.idp?.close(),
  };
}

/**
 * The person at the upstream provider: `page` is where Akamon sent the browser (the upstream's
 * authorization URL). Types the card number and name, and brings the browser back to Akamon.
 */
export async function verifyUpstream(browser: Browser, page: Page, card: string, name: string): Promise<Page> {
  const upstream = new URL(page.url);
  expect(upstream.origin).not.toBe(browser.origin);
  const there = new Browser(upstream.origin);
  const form = await there.visit(page.url);
  expect(form.html).toContain('FOR DEVELOPMENT ONLY');
  const back = await there.submit(form, /\/card$/, { card, name });
  expect(new URL(back.url).pathname).toBe('/idv/callback');
  return browser.visit(back.url);
}
