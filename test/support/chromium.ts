import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium, unless AKAMON_CHROMIUM names another (global-setup.js installs it when missing). */
export const CHROMIUM = process.env.AKAMON_CHROMIUM ?? '/usr/bin/chromium';

/** Debian's chromium (installed by global-setup.js), headless and kept off the network. */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}
