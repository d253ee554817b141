import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from '@jest/globals';
import type { Browser as ChromiumBrowser } from 'playwright-core';
import { startAkamon, type RunningAkamon } from './akamon.ts';
import { launchChromium } from './chromium.ts';

export interface BrowserWorld {
  akamon: RunningAkamon;
  browser: ChromiumBrowser;
  /** A relying party's page on loopback (chromium refuses the port-9 URIs other tests use), under `host`. */
  relyingPartyOrigin: string;
  close(): Promise<void>;
}

/**
 * What a browser test file starts once: an Akamon, Debian's chromium and a relying party whose
 * callback is a real page. Closed in reverse, Akamon last even when the others fail to close.
 */
export async function startBrowserWorld(options: { env?: Record<string, string>; chromiumArgs?: string[]; relyingPartyHost?: string } = {}): Promise<BrowserWorld> {
  const akamon = await startAkamon(options.env ? { env: options.env } : {});
  const browser = await launchChromium(options.chromiumArgs);
  const relyingParty: Server = createServer((_request, response) => response.end('relying party'));
  await new Promise<void>((resolve) => relyingParty.listen(0, '127.0.0.1', resolve));
  return {
    akamon,
    browser,
    relyingPartyOrigin: `http://${options.relyingPartyHost ?? '127.0.0.1'}:${(relyingParty.address() as AddressInfo).port}`,
    async close() {
      try {
        relyingParty.close();
        await browser.close();
      } finally {
        await akamon.close();
      }
    },
  };
}

/**
 * One world for a test file: started in its beforeAll, handed to `ready` (to keep its parts in the
 * file's variables), closed in its afterAll. The hooks every browser test file would write again.
 */
export function browserWorldForFile(ready: (world: BrowserWorld) => void, options: Parameters<typeof startBrowserWorld>[0] = {}): void {
  let world: BrowserWorld | undefined;
  beforeAll(async () => {
    world = await startBrowserWorld(options);
    ready(world);
  }, 120_000);
  afterAll(() => world?.close());
}
