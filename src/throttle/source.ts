import { canonicalIp, ipv6Groups } from '../shared/ip-address.ts';

/**
 * The unit a caller is counted by in every per-address limit: its IPv4 address, or the /64 network
 * of its IPv6 address. A /64 is what one subscriber or one LAN gets, so counting single IPv6
 * addresses would give each caller 2^64 fresh budgets. However the address is written, one host
 * is one source; what is not an address at all (a request whose socket already closed) is one
 * source, `unknown`, so no caller-chosen text ever becomes a key.
 */
export function sourceOf(ip: string): string {
  const address = canonicalIp(ip);
  if (!address) return 'unknown';
  if (!address.includes(':')) return address;
  return `${ipv6Groups(address)
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}
