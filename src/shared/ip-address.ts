import { isIPv4, isIPv6 } from 'node:net';

/** Text longer than this is not an address: the longest IPv6 text with brackets, zone id and port is far shorter. */
const MAX_TEXT_LENGTH = 100;

/**
 * The one way an IP address is written, or undefined when `text` is not an address. One host must
 * have one text, or every spelling of it would be a fresh throttle bucket:
 * - IPv4 in dotted decimal; leading zeros are refused (010.0.0.1 is octal to some parsers);
 * - IPv6 compressed and in lower case (RFC 5952, as the URL standard writes it);
 * - an IPv4-mapped IPv6 address, in any spelling (::ffff:1.2.3.4, ::FFFF:0102:0304), is its IPv4 address;
 * - brackets, a port and an IPv6 zone id are dropped: they say how a host was reached, not which.
 */
export function canonicalIp(text: string): string | undefined {
  if (text.length > MAX_TEXT_LENGTH) return undefined;
  let host = text.trim();
  const withPort = /^(?:\[([^\]]*)\]|([\d.]+))(?::(\d{1,5}))?$/.exec(host);
  if (withPort && Number(withPort[3] ?? 0) > 65_535) return undefined;
  if (withPort) host = withPort[1] ?? withPort[2];
  if (isIPv4(host)) return host;
  host = host.replace(/%[^%]*$/, '');
  if (!isIPv6(host)) return undefined;
  // Should the two parsers ever disagree, the text is no address rather than a throw.
  const url = URL.parse(`http://[${host}]/`);
  if (!url) return undefined;
  const compressed = url.hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed);
  if (!mapped) return compressed;
  const [high, low] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)];
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

export interface Subnet {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** `10.0.0.0/8`, `2001:db8::/32` or a single address (a /32 or /128); undefined when it is none of them. */
export function parseSubnet(text: string): Subnet | undefined {
  const [written, bits, ...rest] = text.trim().split('/');
  const address = canonicalIp(written);
  if (!address || rest.length > 0 || (bits !== undefined && !/^\d{1,3}$/.test(bits))) return undefined;
  const family = address.includes(':') ? 'ipv6' : 'ipv4';
  const size = family === 'ipv4' ? 32 : 128;
  // An IPv4-mapped network (::ffff:10.0.0.0/104) is the IPv4 network it maps.
  const mappedBits = family === 'ipv4' && written.includes(':') ? 96 : 0;
  const prefix = bits === undefined ? size : Number(bits) - mappedBits;
  if (prefix < 0 || prefix > size) return undefined;
  return { address, prefix, family };
}

/** The eight 16-bit groups of a valid IPv6 address (an embedded IPv4 tail fills the last two). */
export function ipv6Groups(address: string): number[] {
  const [head, tail] = address.split('::');
  const part = (text: string | undefined) =>
    (text ? text.split(':') : []).flatMap((group) => {
      if (!group.includes('.')) return [parseInt(group, 16)];
      const [a, b, c, d] = group.split('.').map(Number);
      return [(a << 8) | b, (c << 8) | d];
    });
  const left = part(head);
  const right = part(tail);
  return tail === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}
