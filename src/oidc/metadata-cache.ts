import type { Context, Middleware, Next } from 'koa';
import type Provider from 'oidc-provider';

/**
 * The provider routes whose answer is the same for every plain GET until the provider is rebuilt,
 * by their one canonical path: the provider's router also answers other spellings (any letter
 * case, a trailing slash), which must not each become an entry.
 */
const CACHED_PATHS = new Map([
  ['/.well-known/openid-configuration', 'discovery'],
  ['/.well-known/oauth-authorization-server', 'discovery'],
  ['/jwks', 'jwks'],
]);

interface CachedAnswer {
  type: string;
  headers: [string, string][];
  body: Buffer;
}

/**
 * Relying parties poll discovery and the JWKS, and oidc-provider rebuilds both on every request
 * behind the whole middleware stack. The first answer is kept and replayed. It belongs to the
 * provider instance that produced it: a key rotation builds a new instance, which starts an empty
 * cache. Only requests without an Origin header are served from it (the provider's CORS answer
 * echoes the origin), and only over the issuer's protocol (issuer-host.ts puts every request under its host).
 */
export function metadataCache(currentProvider: () => Provider, issuer: string): Middleware {
  const issuerOrigin = new URL(issuer).origin;
  let owner: Provider | undefined;
  const answers = new Map<string, CachedAnswer>();

  return async (ctx: Context, next: Next) => {
    const route = CACHED_PATHS.get(ctx.path);
    // Koa's ctx.origin is the Origin header; the request's own origin is protocol and host.
    if (!route || ctx.method !== 'GET' || ctx.get('origin') || `${ctx.protocol}://${ctx.host}` !== issuerOrigin) return next();
    const provider = currentProvider();
    if (owner !== provider) {
      answers.clear();
      owner = provider;
    }
    const cached = answers.get(ctx.path);
    if (cached) {
      for (const [name, value] of cached.headers) ctx.set(name, value);
      ctx.type = cached.type;
      ctx.body = cached.body;
      return;
    }

    const before = { ...ctx.response.headers };
    await next();
    // Kept only if this very provider answered (a rotation may have swapped it meanwhile).
    const answeredBy = (ctx as Context & { oidc?: { route?: string } }).oidc?.route;
    if (ctx.status !== 200 || answeredBy !== route || currentProvider() !== provider) return;
    const headers = Object.entries(ctx.response.headers)
      .filter(([name, value]) => name !== 'content-type' && name !== 'content-length' && before[name] !== value)
      .map(([name, value]) => [name, String(value)] as [string, string]);
    const body = Buffer.isBuffer(ctx.body) ? ctx.body : Buffer.from(typeof ctx.body === 'string' ? ctx.body : JSON.stringify(ctx.body));
    answers.set(ctx.path, { type: ctx.response.get('content-type'), headers, body });
  };
}
