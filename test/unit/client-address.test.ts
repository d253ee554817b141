import { describe, expect, test } from '@jest/globals';
import { canonicalIp, ipv6Groups, parseSubnet } from '../../src/shared/ip-address.ts';
import { clientAddress, proxyTrust } from '../../src/http/client-address.ts';
import { ConfigError, LOCAL_NETWORKS, loadConfig } from '../../src/config/config.ts';

// Guards issue 12 points 5 and 6: one host has one address text (or every spelling of it is a fresh
// throttle bucket), X-Forwarded-For is believed only from a trusted proxy, and nothing that is not
// an address becomes ctx.ip (a 9000-character header used to reach the throttle table and answer 500).

describe('canonicalIp: the one text of an address', () => {
  test.each([
    ['198.51.100.7', '198.51.100.7'],
    [' 198.51.100.7 ', '198.51.100.7'],
    ['198.51.100.7:5678', '198.51.100.7'],
    ['[198.51.100.7]:80', '198.51.100.7'],
    ['::ffff:198.51.100.7', '198.51.100.7'],
    ['::FFFF:198.51.100.7', '198.51.100.7'],
    ['::ffff:c633:6407', '198.51.100.7'],
    ['::ffff:C633:6407', '198.51.100.7'],
    ['0:0:0:0:0:ffff:c633:6407', '198.51.100.7'],
    ['0000:0000:0000:0000:0000:FFFF:198.51.100.7', '198.51.100.7'],
    ['[::ffff:198.51.100.7]:443', '198.51.100.7'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['[2001:db8::1]:8443', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['[fe80::1%25eth0]:80', 'fe80::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::1', '::1'],
    ['64:ff9b::198.51.100.7', '64:ff9b::c633:6407'],
  ])('%j is %j', (text, canonical) => {
    expect(canonicalIp(text)).toBe(canonical);
  });

  test.each(['', 'unknown', '01.2.3.4', '1.2.3.04', '1.2.3', '256.1.1.1', '1.2.3.4.5', '2001:db8:::1', '[2001:db8::1', '_hidden', '1.2.3.4:99999', 'x'.repeat(9000), '1'.repeat(101)])(
    '%j is not an address',
    (text) => {
      expect(canonicalIp(text)).toBeUndefined();
    },
  );

  test('ipv6Groups expands every spelling to the same eight groups', () => {
    expect(ipv6Groups('2001:db8::7:1')).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 7, 1]);
    expect(ipv6Groups('::')).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(ipv6Groups('64:ff9b::198.51.100.7')).toEqual([0x64, 0xff9b, 0, 0, 0, 0, 0xc633, 0x6407]);
    expect(ipv6Groups('1:2:3:4:5:6:7:8')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe('parseSubnet: an entry of AKAMON_TRUSTED_PROXIES', () => {
  test('addresses and networks of both families', () => {
    expect(parseSubnet('10.0.0.5')).toEqual({ address: '10.0.0.5', prefix: 32, family: 'ipv4' });
    expect(parseSubnet('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseSubnet('2001:DB8::/32')).toEqual({ address: '2001:db8::', prefix: 32, family: 'ipv6' });
    expect(parseSubnet('::1')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
    expect(parseSubnet('::ffff:10.0.0.0/104')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
  });

  test.each(['10.0.0.0/33', '2001:db8::/129', '10.0.0.0/', '10.0.0.0/8/8', 'proxy.example.ac.jp', '10.0.0.0/-1', '::ffff:10.0.0.0/64'])('%j is refused', (text) => {
    expect(parseSubnet(text)).toBeUndefined();
  });
});

describe('clientAddress: who the client is', () => {
  const trust = (proxies: string, hops = 1) => proxyTrust(loadConfig({ AKAMON_TRUSTED_PROXIES: proxies, AKAMON_PROXY_HOPS: String(hops) }));
  const nobody = proxyTrust(loadConfig({}));

  test('without trusted proxies it is the peer, whatever X-Forwarded-For says', () => {
    expect(clientAddress('203.0.113.9', '198.51.100.1', nobody)).toBe('203.0.113.9');
    expect(clientAddress('::ffff:203.0.113.9', undefined, nobody)).toBe('203.0.113.9');
  });

  test('a peer that is not a trusted proxy cannot speak for anyone', () => {
    expect(clientAddress('203.0.113.9', '198.51.100.1', trust('10.0.0.5'))).toBe('203.0.113.9');
    expect(clientAddress('10.0.0.6', '198.51.100.1', trust('10.0.0.5'))).toBe('10.0.0.6');
  });

  test('a trusted proxy tells the address it saw, in its one text', () => {
    expect(clientAddress('10.0.0.5', '198.51.100.1', trust('10.0.0.5'))).toBe('198.51.100.1');
    expect(clientAddress('::ffff:10.0.0.5', '198.51.100.1:5678', trust('10.0.0.0/24'))).toBe('198.51.100.1');
    expect(clientAddress('2001:db8::5', '[2001:DB8:0:7::1]:443', trust('2001:db8::/64'))).toBe('2001:db8:0:7::1');
    expect(clientAddress('10.0.0.5', '::FFFF:c633:6401', trust('10.0.0.5'))).toBe('198.51.100.1');
  });

  test("only the entries the proxies appended are read: the left of the header is the client's to forge", () => {
    expect(clientAddress('10.0.0.5', '192.0.2.66, 198.51.100.1', trust('10.0.0.5'))).toBe('198.51.100.1');
    // A client inside a trusted network is still the client: one hop is read, not its forgery.
    expect(clientAddress('10.0.0.5', '192.0.2.66, 10.0.0.99', trust('10.0.0.0/8'))).toBe('10.0.0.99');
  });

  test('with more hops, the walk skips trusted proxies from the right and stops at the first other address', () => {
    const two = trust('10.0.0.5, 192.0.2.10', 3);
    expect(clientAddress('10.0.0.5', '192.0.2.66, 198.51.100.1, 192.0.2.10', two)).toBe('198.51.100.1');
    expect(clientAddress('10.0.0.5', '198.51.100.1, 192.0.2.99', two)).toBe('192.0.2.99');
    // All hops trusted: the leftmost read is the client (a request made inside the proxies' network).
    expect(clientAddress('10.0.0.5', '192.0.2.10', two)).toBe('192.0.2.10');
  });

  test('an entry that is not an address ends the walk at the trusted hop that wrote it', () => {
    const two = trust('10.0.0.5, 192.0.2.10', 3);
    expect(clientAddress('10.0.0.5', 'x'.repeat(9000), trust('10.0.0.5'))).toBe('10.0.0.5');
    expect(clientAddress('10.0.0.5', '198.51.100.1, unknown, 192.0.2.10', two)).toBe('192.0.2.10');
    expect(clientAddress('10.0.0.5', '198.51.100.1,,', two)).toBe('10.0.0.5');
    expect(clientAddress('10.0.0.5', `198.51.100.1, ${'9'.repeat(200)}`, two)).toBe('10.0.0.5');
  });

  test('a peer without an address (its connection closed) is the empty text, never the header', () => {
    expect(clientAddress(undefined, '198.51.100.1', trust('10.0.0.5'))).toBe('');
  });
});

describe('AKAMON_TRUSTED_PROXIES and AKAMON_TRUST_PROXY', () => {
  test('nobody is trusted by default; AKAMON_TRUST_PROXY=true alone trusts loopback and private networks', () => {
    expect(loadConfig({}).trustedProxies).toEqual([]);
    expect(loadConfig({}).trustProxy).toBe(false);
    const local = loadConfig({ AKAMON_TRUST_PROXY: 'true' });
    expect(local.trustedProxies).toEqual(LOCAL_NETWORKS.map(parseSubnet));
    const { proxies } = proxyTrust(local);
    for (const address of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '::1', 'fd00::1'])
      expect([address, proxies!.check(address, address.includes(':') ? 'ipv6' : 'ipv4')]).toEqual([address, true]);
    for (const address of ['203.0.113.9', '172.32.0.1', '2001:db8::1']) expect([address, proxies!.check(address, address.includes(':') ? 'ipv6' : 'ipv4')]).toEqual([address, false]);
  });

  test('a list names exactly whom to trust, and turns proxy trust on', () => {
    const config = loadConfig({ AKAMON_TRUSTED_PROXIES: ' 10.0.0.5 , 2001:db8::/48,' });
    expect(config.trustProxy).toBe(true);
    expect(config.trustedProxies).toEqual([
      { address: '10.0.0.5', prefix: 32, family: 'ipv4' },
      { address: '2001:db8::', prefix: 48, family: 'ipv6' },
    ]);
  });

  test('a bad entry, or a list with AKAMON_TRUST_PROXY=false, refuses to start naming the setting', () => {
    expect(() => loadConfig({ AKAMON_TRUSTED_PROXIES: '10.0.0.5, proxy.example.ac.jp' })).toThrow(/AKAMON_TRUSTED_PROXIES: "proxy.example.ac.jp"/);
    expect(() => loadConfig({ AKAMON_TRUSTED_PROXIES: '10.0.0.0/40' })).toThrow(ConfigError);
    expect(() => loadConfig({ AKAMON_TRUSTED_PROXIES: '10.0.0.5', AKAMON_TRUST_PROXY: 'false' })).toThrow(/AKAMON_TRUST_PROXY/);
  });

  test('production needs a trusted proxy, named or on a local network', () => {
    const production = { AKAMON_ENV: 'production', AKAMON_ISSUER: 'https://login.example.ac.jp', AKAMON_SECRET: 's'.repeat(40) };
    expect(() => loadConfig(production)).toThrow(/AKAMON_TRUSTED_PROXIES/);
    expect(loadConfig({ ...production, AKAMON_TRUSTED_PROXIES: '10.0.0.5' }).trustProxy).toBe(true);
    expect(loadConfig({ ...production, AKAMON_TRUST_PROXY: 'true' }).trustProxy).toBe(true);
  });
});
