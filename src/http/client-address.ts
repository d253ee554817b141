import { BlockList } from 'node:net';
import type { Context, Next } from 'koa';
import type { Config } from '../config/config.ts';
import { canonicalIp } from '../shared/ip-address.ts';

export interface ProxyTrust {
  /** The proxies whose X-Forwarded-For is believed; undefined: nobody's. */
  readonly proxies: BlockList | undefined;
  /** At most this many X-Forwarded-For entries are read, from the right. */
  readonly hops: number;
}

export function proxyTrust(config: Pick<Config, 'trustedProxies' | 'proxyHops'>): ProxyTrust {
  if (config.trustedProxies.length === 0) return { proxies: undefined, hops: config.proxyHops };
  const proxies = new BlockList();
  for (const { address, prefix, family } of config.trustedProxies) proxies.addSubnet(address, prefix, family);
  return { proxies, hops: config.proxyHops };
}

const isTrusted = (proxies: BlockList, address: string) => proxies.check(address, address.includes(':') ? 'ipv6' : 'ipv4');

/**
 * The client's address, in its one canonical text (shared/ip-address.ts). It is the direct peer,
 * unless the peer is a trusted proxy: then X-Forwarded-For is walked from the right, each entry
 * being what the hop to its right saw, for as long as the hop is a trusted proxy (and at most
 * `hops` entries). The first untrusted hop is the client; everything to its left is that client's
 * own claim and never read. An entry that is not an address ends the walk at the trusted hop that
 * wrote it: the garbage is never used, and a proxy that writes garbage is itself the source.
 * Returns '' only when the socket has no peer address any more (the request's connection closed).
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | undefined, trust: ProxyTrust): string {
  let address = canonicalIp(peer ?? '') ?? '';
  const { proxies } = trust;
  if (!proxies || !forwardedFor || !address) return address;
  const entries = forwardedFor.split(',');
  for (let i = 1; i <= trust.hops && i <= entries.length; i += 1) {
    if (!isTrusted(proxies, address)) break;
    const seen = canonicalIp(entries[entries.length - i]);
    if (!seen) break;
    address = seen;
  }
  return address;
}

/**
 * Sets ctx.ip, before anything reads it, to the client's address (clientAddress): the one address
 * every throttle, the sign-in log, the audit, the cap on anonymous records and the access log use.
 * A peer that is not a trusted proxy has its X-Forwarded-* headers removed, so that Koa (app.proxy)
 * takes neither the protocol (HTTPS required in production) nor the host from it.
 */
export function clientAddressMiddleware(config: Pick<Config, 'trustedProxies' | 'proxyHops'>) {
  const trust = proxyTrust(config);
  return async (ctx: Context, next: Next) => {
    const peer = canonicalIp(ctx.req.socket.remoteAddress ?? '') ?? '';
    if (trust.proxies && peer && isTrusted(trust.proxies, peer)) {
      ctx.request.ip = clientAddress(peer, ctx.get('x-forwarded-for'), trust);
    } else {
      for (const name of FORWARDED_HEADERS) delete ctx.request.header[name];
      ctx.request.ip = peer;
    }
    await next();
  };
}

const FORWARDED_HEADERS = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'];
