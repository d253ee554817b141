import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback relying party's back-channel logout endpoint that keeps the logout tokens it receives;
 * `checkBack` runs as each arrives, before it is answered (what a relying party finds when it asks
 * the provider then), and what it found is kept in `found`.
 */
export async function backchannelReceiver<T = never>(checkBack?: () => Promise<T>) {
  const received: string[] = [];
  const found: T[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', async () => {
      if (checkBack) found.push(await checkBack());
      received.push(new URLSearchParams(body).get('logout_token') ?? '');
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    received,
    found,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel`,
    /** Waits up to 3 s for `count` logout tokens. */
    async waitFor(count: number) {
      const deadline = Date.now() + 3000;
      while (received.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return received;
    },
    close: () => new Promise((r) => server.close(r)),
  };
}
