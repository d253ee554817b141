import dns from 'node:dns';
import net from 'node:net';
import type * as Undici from 'undici';
import { lazyModule } from '../shared/lazy-module.ts';

/** Loaded on the first outgoing request (or by the warm-up), not at start. */
const undici = lazyModule((require) => require('undici') as typeof Undici);

/** Loopback, private, link-local, shared, documentation, multicast and reserved ranges. */
const SPECIAL_USE = new net.BlockList();
for (const [prefix, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  SPECIAL_USE.addSubnet(prefix, bits, 'ipv4');
for (const [prefix, bits] of [
  // No ::ffff:0:0/96 here: BlockList would apply it to every IPv4 address. Mapped addresses are
  // unwrapped in isSpecialUseAddress instead.
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  SPECIAL_USE.addSubnet(prefix, bits, 'ipv6');

/** Whether an address (not a host name) lies in `list`; an IPv4-mapped IPv6 address by its IPv4 part. */
const inList =
  (list: net.BlockList) =>
  (address: string): boolean => {
    const family = net.isIP(address);
    if (family === 0) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return list.check(mapped[1], 'ipv4');
    return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  };

export const isSpecialUseAddress = inList(SPECIAL_USE);

/**
 * Never a target, even where private ones are allowed: link-local (a cloud's metadata service at
 * 169.254.169.254, fe80::) and "this network". Campus systems live on private and loopback
 * addresses; nothing a relying party registers lives there.
 */
const NEVER_A_TARGET = new net.BlockList();
NEVER_A_TARGET.addSubnet('169.254.0.0', 16, 'ipv4');
NEVER_A_TARGET.addSubnet('0.0.0.0', 8, 'ipv4');
NEVER_A_TARGET.addSubnet('fe80::', 10, 'ipv6');
NEVER_A_TARGET.addAddress('::', 'ipv6');

const isNeverATarget = inList(NEVER_A_TARGET);

export class SpecialUseAddressError extends Error {
  override name = 'SpecialUseAddressError';
}

/**
 * Resolves like dns.lookup but refuses addresses `refused` names. It runs at connect time, for the
 * address actually dialled, so a DNS answer that changes between check and use gains nothing.
 */
function guardedLookup(refused: (address: string) => boolean): net.LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 4);
      const list = addresses as dns.LookupAddress[];
      if (list.length === 0 || list.some((a) => refused(a.address))) {
        return callback(new SpecialUseAddressError(`${hostname} resolves to an address Akamon does not call`) as NodeJS.ErrnoException, '', 4);
      }
      if ((options as dns.LookupOptions).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      callback(null, list[0].address, list[0].family);
    });
  };
}

/** One connection pool per rule (what `refused` names), shared by every fetch that follows it. */
const agents = new Map<(address: string) => boolean, Undici.Agent>();
function agentFor(refused: (address: string) => boolean): Undici.Agent {
  let agent = agents.get(refused);
  if (!agent) {
    agent = new (undici().Agent)({ connect: { lookup: guardedLookup(refused) } });
    agents.set(refused, agent);
  }
  return agent;
}

/**
 * The provider's outgoing requests (back-channel logout, a client's jwks_uri ...). By default
 * loopback and private targets are refused, as oidc-provider intends; campus systems often live
 * there, so AKAMON_BACKCHANNEL_ALLOW_PRIVATE=true lifts that rule, but never for link-local
 * targets. Redirects are never followed: each one would be a target nobody checked (address
 * literals do not pass through the lookup), and neither a JWKS nor a logout endpoint needs one.
 */
export function outboundFetch(allowPrivate: boolean, now: () => number = Date.now): typeof fetch {
  const refused = allowPrivate ? isNeverATarget : isSpecialUseAddress;
  const unreachable = new Unreachable(now);
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // Address literals never reach the lookup hook.
    if (refused(host) || (!allowPrivate && host === 'localhost')) throw new SpecialUseAddressError(`${host} is an address Akamon does not call`);
    const fetching = (init?.method ?? 'GET').toUpperCase() === 'GET';
    if (fetching) unreachable.check(url.href);
    const options = { ...init, dispatcher: agentFor(refused), redirect: 'error' } as Parameters<typeof Undici.fetch>[1];
    try {
      const response = (await undici().fetch(url, options)) as unknown as Response;
      return fetching ? await wholeDocument(response) : response;
    } catch (error) {
      if (fetching) unreachable.failed(url.href);
      throw error;
    }
  }) as typeof fetch;
}

/**
 * A fetched document read to its end here (within the request's own timeout), so that one whose
 * answer began and then stalled, or that is larger than any key set, fails as one that never
 * answered and is remembered so (Unreachable): the provider reads the body only after the fetch.
 */
async function wholeDocument(response: Response): Promise<Response> {
  const reader = response.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let read = await reader?.read(); read && !read.done; read = await reader!.read()) {
    size += read.value.byteLength;
    if (size > DOCUMENT_MAX_BYTES) {
      await reader!.cancel();
      throw new Error(`${response.url} sent more than ${DOCUMENT_MAX_BYTES} bytes`);
    }
    chunks.push(read.value);
  }
  return new Response(response.status === 204 || response.status === 304 ? null : Buffer.concat(chunks), { status: response.status, statusText: response.statusText, headers: response.headers });
}

/** Far above any client's key set (a few keys of a few hundred bytes each). */
const DOCUMENT_MAX_BYTES = 512 * 1024;

/**
 * Documents fetched with GET (a client's jwks_uri) whose last fetch failed without a whole answer
 * (a timeout, a refused connection, a body that stalled or was too large): for UNREACHABLE_SECONDS
 * they fail at once. A token request authenticating such a client fetches its keys before its
 * transaction (client-keys.ts); the
 * provider's second try inside it must not wait again, holding a database connection (on PGlite
 * the only one). An answer that is an HTTP error is the provider's own to remember (it keeps a
 * failed JWKS for a minute).
 */
class Unreachable {
  readonly #until = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  check(url: string): void {
    const until = this.#until.get(url);
    if (until === undefined) return;
    if (until > this.#now()) throw new Error(`${new URL(url).host} did not answer a moment ago; not asked again before ${new Date(until).toISOString()}`);
    this.#until.delete(url);
  }

  failed(url: string): void {
    // Bounded: entries past their time go first, then the oldest.
    if (this.#until.size >= UNREACHABLE_REMEMBERED) {
      for (const [key, until] of this.#until) if (until <= this.#now()) this.#until.delete(key);
      if (this.#until.size >= UNREACHABLE_REMEMBERED) this.#until.delete(this.#until.keys().next().value!);
    }
    this.#until.set(url, this.#now() + UNREACHABLE_SECONDS * 1000);
  }
}

/** How long a document that did not answer is not asked for again: oidc-provider's own shortest JWKS freshness. */
const UNREACHABLE_SECONDS = 60;
const UNREACHABLE_REMEMBERED = 1000;
