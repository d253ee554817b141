import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A loopback relying party's back-channel logout endpoint that keeps the logout tokens it receives. */
export async function backchannelReceiver() {
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push(new URLSearchParams(body).get('logout_token') ?? '');
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    received,
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
