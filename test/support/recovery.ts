import { Browser, type Page } from './browser.ts';
import { solveCaptcha } from './captcha.ts';

/**
 * A browser of its own, at source address `ip` (Akamon trusting the proxy), that asked /recover to
 * reset `commonId`: the page it got (the code page, the no-email page, a refusal).
 */
export async function startReset(origin: string, commonId: string, ip: string): Promise<{ browser: Browser; page: Page }> {
  const browser = new Browser(origin);
  browser.extraHeaders = { 'x-forwarded-for': ip };
  const first = await browser.visit(`${origin}/recover`);
  const page = await browser.submit(first, /\/recover\/start$/, { identifier: commonId, captcha: await solveCaptcha(first) });
  return { browser, page };
}
