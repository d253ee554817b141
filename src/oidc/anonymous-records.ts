import Provider, { type Adapter, type AdapterPayload, type KoaContextWithOIDC } from 'oidc-provider';
import type { AnonymousCap } from '../throttle/anonymous-cap.ts';

type AdapterClass = new (model: string) => Adapter & { readonly model: string };

/**
 * Whether this write stores something a caller made without signing in:
 * - a Session without an account: GET /session/end by someone not signed in (it keeps the
 *   logout's state until the confirmation); a session is saved at /auth only once it has one;
 * - a new Interaction: every authorization request that needs a sign-in step. The provider
 *   writes an interaction again only to record its result, so a write without one is a new one;
 * - a pushed authorization request of a public client (no client authentication at all);
 * - a device authorization request of a public client (a new device code).
 */
function isAnonymousRecord(model: string, payload: AdapterPayload, ctx: KoaContextWithOIDC): boolean {
  switch (model) {
    case 'Session':
      return !payload.accountId;
    case 'Interaction':
      return !payload.result;
    case 'PushedAuthorizationRequest':
      return ctx.oidc.client?.clientAuthMethod === 'none';
    case 'DeviceCode':
      return ctx.oidc.route === 'device_authorization' && ctx.oidc.client?.clientAuthMethod === 'none';
    default:
      return false;
  }
}

/**
 * The provider's adapter, with every anonymous record counted against its caller's source
 * address and the ceiling for everyone (AnonymousCap) before it is written. Over a budget the write
 * throws: the provider reports it as a server error, and the protocol gate answers 429 (the
 * address's budget) or 503 (the ceiling) with Retry-After (a page where a person is looking,
 * RFC 6749 JSON elsewhere). The caller's address comes from the
 * request the provider is serving (its request context); writes made outside a provider route
 * (results of our own interaction steps) carry no new anonymous record.
 */
export function cappingAnonymousRecords(Base: AdapterClass, cap: AnonymousCap): AdapterClass {
  return class extends Base {
    override async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const ctx = Provider.ctx;
      if (ctx && isAnonymousRecord(this.model, payload, ctx)) await cap.take(ctx.ip);
      return super.upsert(id, payload, expiresIn);
    }
  };
}
