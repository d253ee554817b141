import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import dns from 'node:dns/promises';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import { isSpecialUseAddress, outboundFetch, SpecialUseAddressError } from '../../src/oidc/outbound-fetch.ts';

describe('isSpecialUseAddress', () => {
  test.each([
    ['127.0.0.1', 'IPv4 loopback'],
    ['127.255.255.254', 'IPv4 loopback range'],
    ['10.1.2.3', 'RFC 1918 10/8'],
    ['172.16.0.1', 'RFC 1918 172.16/12'],
    ['172.31.255.255', 'RFC 1918 172.16/12, upper end'],
    ['192.168.1.1', 'RFC 1918 192.168/16'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['100.64.0.1', 'shared address space (CGNAT)'],
    ['0.0.0.0', 'this network'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.2.1', 'documentation'],
    ['::1', 'IPv6 loopback'],
    ['::', 'IPv6 unspecified'],
    ['fe80::1', 'IPv6 link-local'],
    ['fd00::1', 'IPv6 unique local'],
    ['ff02::1', 'IPv6 multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::FFFF:10.0.0.1', 'IPv4-mapped private, upper case'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback in hex form'],
    ['2001:db8::1', 'IPv6 documentation'],
  ])('%s is special use (%s)', (address) => {
    expect(isSpecialUseAddress(address)).toBe(true);
  });

  test.each([
    ['172.32.0.1', 'just above 172.16/12'],
    ['172.15.255.255', 'just below 172.16/12'],
    ['100.128.0.1', 'just above 100.64/10'],
    ['8.8.8.8', 'public IPv4'],
    ['1.1.1.1', 'public IPv4'],
    ['133.11.0.1', 'public IPv4 (a university)'],
    ['::ffff:8.8.8.8', 'IPv4-mapped public'],
    ['2001:4860::8888', 'public IPv6'],
    ['2400:cb00::1', 'public IPv6'],
  ])('%s is not special use (%s)', (address) => {
    expect(isSpecialUseAddress(address)).toBe(false);
  });

  test.each(['localhost', 'example.com', '', ' ', '1.2.3', '256.1.1.1', '127.0.0.1 ', '[::1]', 'http://127.0.0.1/', 'fe80::1::2', 'example.com.'])(
    'a non-IP string (%j) is not an address at all',
    (value) => {
      expect(isSpecialUseAddress(value)).toBe(false);
    },
  );
});

describe('outboundFetch', () => {
  let server: http.Server;
  let port: number;
  let connections = 0;
  let requests = 0;

  beforeAll(async () => {
    server = http.createServer((request, response) => {
      requests += 1;
      if (request.url?.startsWith('/redirect')) {
        // A target of its own choosing (here a reachable one, so that following it would succeed).
        response.writeHead(302, { location: '/followed' }).end();
        return;
      }
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ method: request.method, path: request.url, marker: request.headers['x-marker'] ?? null }));
    });
    server.on('connection', () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test.each(['http://127.0.0.1:1/', 'http://localhost:1/', 'http://[::1]:1/', 'http://[::ffff:127.0.0.1]:1/', 'http://2130706433:1/', 'http://LOCALHOST:1/'])(
    'outboundFetch(false) refuses %s with SpecialUseAddressError',
    async (url) => {
      const error = await outboundFetch(false)(url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SpecialUseAddressError);
    },
  );

  test('outboundFetch(false) refuses before connecting to a listening loopback server', async () => {
    const before = connections;
    for (const host of ['127.0.0.1', 'localhost']) {
      const error = await outboundFetch(false)(`http://${host}:${port}/secret`).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SpecialUseAddressError);
    }
    const asUrl = await outboundFetch(false)(new URL(`http://127.0.0.1:${port}/secret`)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(asUrl).toBeInstanceOf(SpecialUseAddressError);
    expect(connections).toBe(before);
  });

  test('outboundFetch(false) also refuses a host name that resolves to a special-use address', async () => {
    // The machine's own name usually resolves to loopback or a private address; if it does not,
    // there is nothing to check here without the network.
    const name = os.hostname();
    const addresses = await dns.lookup(name, { all: true }).catch(() => []);
    if (addresses.length === 0 || !addresses.some((a) => isSpecialUseAddress(a.address))) return;
    const before = connections;
    const error = await outboundFetch(false)(`http://${name}:${port}/`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeDefined();
    const chain: unknown[] = [];
    for (let e: unknown = error; e && chain.length < 5; e = (e as { cause?: unknown }).cause) chain.push(e);
    expect(chain.some((e) => e instanceof SpecialUseAddressError || (e as Error).name === 'SpecialUseAddressError')).toBe(true);
    expect(connections).toBe(before);
  });

  test('outboundFetch(true) reaches a loopback server, keeping method and headers', async () => {
    const before = requests;
    const response = await outboundFetch(true)(`http://127.0.0.1:${port}/hello?x=1`, { method: 'POST', headers: { 'x-marker': 'm1' }, body: 'a=b' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ method: 'POST', path: '/hello?x=1', marker: 'm1' });
    const viaName = await outboundFetch(true)(`http://localhost:${port}/named`).catch(() => undefined);
    // localhost may resolve to ::1 first while the server listens on 127.0.0.1 only.
    if (viaName) expect(await viaName.json()).toMatchObject({ method: 'GET', path: '/named' });
    expect(requests).toBeGreaterThan(before);
  });

  test('a redirect is never followed, also where private targets are allowed', async () => {
    const error = await outboundFetch(true)(`http://127.0.0.1:${port}/redirect`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
  });

  test.each(['http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/', 'http://0.0.0.0:1/', 'http://[::ffff:169.254.169.254]/'])(
    'outboundFetch(true) still refuses the link-local or unspecified target %s',
    async (url) => {
      const error = await outboundFetch(true)(url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SpecialUseAddressError);
    },
  );
});

// Found by a fault review: a client's jwks_uri that never answers held a token request's
// transaction for the whole timeout, on every request (on PGlite everyone waited behind it).
describe('a document that did not answer', () => {
  let server: http.Server;
  let url: string;
  let connections = 0;
  beforeAll(async () => {
    // Takes the connection and drops it unanswered, as a broken endpoint does.
    server = http.createServer();
    server.on('connection', (socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  test('is not asked for again for a minute (GET only); then it is', async () => {
    let now = 1_000_000;
    const fetcher = outboundFetch(true, () => now);
    await expect(fetcher(url)).rejects.toThrow();
    expect(connections).toBe(1);
    await expect(fetcher(url)).rejects.toThrow(/did not answer a moment ago/);
    expect(connections).toBe(1);
    // A POST (a back-channel logout) is always sent.
    await expect(fetcher(url, { method: 'POST', body: 'x' })).rejects.toThrow();
    expect(connections).toBe(2);
    now += 61_000;
    await expect(fetcher(url)).rejects.not.toThrow(/did not answer a moment ago/);
    expect(connections).toBe(3);
  });
});

describe('a document larger than any key set', () => {
  let server: http.Server;
  let requests = 0;
  beforeAll(async () => {
    // 600 KiB in 64 KiB chunks: past the 512 KiB a fetched document may have.
    server = http.createServer((_request, response) => {
      requests += 1;
      response.writeHead(200, { 'content-type': 'application/json' });
      for (let i = 0; i < 10; i += 1) response.write('x'.repeat(64 * 1024));
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  test('fails as one that did not answer, and is remembered so', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
    const fetcher = outboundFetch(true);
    await expect(fetcher(url)).rejects.toThrow(/sent more than 524288 bytes/);
    await expect(fetcher(url)).rejects.toThrow(/did not answer a moment ago/);
    expect(requests).toBe(1);
  });
});
