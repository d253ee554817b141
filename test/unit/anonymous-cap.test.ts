import { describe, expect, test } from '@jest/globals';
import { sourceOf } from '../../src/throttle/anonymous-cap.ts';

describe('sourceOf: the unit an anonymous caller is counted by', () => {
  test('an IPv4 address is itself, also when the socket reports it IPv4-mapped', () => {
    expect(sourceOf('198.51.100.7')).toBe('198.51.100.7');
    expect(sourceOf('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(sourceOf('::FFFF:198.51.100.7')).toBe('198.51.100.7');
  });

  test('every IPv6 address of one /64 is one source, however it is written', () => {
    const one = ['2001:db8:0:7::1', '2001:db8:0:7:ffff:1:2:3', '2001:0db8:0000:0007::abcd', '2001:DB8:0:7:0:0:0:1', '2001:db8::7:1:2:3:4', '2001:db8:0:7::1%eth0'];
    expect(new Set(one.map(sourceOf))).toEqual(new Set(['2001:db8:0:7::/64']));
    expect(sourceOf('2001:db8:0:8::1')).toBe('2001:db8:0:8::/64');
    expect(sourceOf('::1')).toBe('0:0:0:0::/64');
    expect(sourceOf('64:ff9b::198.51.100.7')).toBe('64:ff9b:0:0::/64');
  });

  test('anything that is not an IP address is kept as it is (it is only ever a key)', () => {
    expect(sourceOf('')).toBe('');
    expect(sourceOf('not-an-address')).toBe('not-an-address');
  });
});
