import type { Context, Next } from 'koa';

/**
 * The provider's endpoints (oidc-provider's default routes, which provider.ts keeps) and the
 * methods each takes; `json` for those programs call. The provider itself lets any other method
 * fall through as if the path did not exist.
 */
const ENDPOINTS: ReadonlyMap<string, { methods: readonly string[]; json: boolean }> = new Map([
  ['/token', { methods: ['POST'], json: true }],
  ['/token/introspection', { methods: ['POST'], json: true }],
  ['/token/revocation', { methods: ['POST'], json: true }],
  ['/request', { methods: ['POST'], json: true }],
  ['/device/auth', { methods: ['POST'], json: true }],
  ['/me', { methods: ['GET', 'HEAD', 'POST'], json: true }],
  ['/jwks', { methods: ['GET', 'HEAD'], json: true }],
  ['/.well-known/openid-configuration', { methods: ['GET', 'HEAD'], json: true }],
  // Pages: the 405 page says where to go.
  ['/auth', { methods: ['GET', 'HEAD'], json: false }],
  ['/session/end', { methods: ['GET', 'HEAD'], json: false }],
  ['/session/end/confirm', { methods: ['POST'], json: false }],
  ['/device', { methods: ['GET', 'HEAD', 'POST'], json: false }],
]);

/** The endpoint at `path` as the provider matches it: any letter case, one trailing slash. */
function endpointAt(path: string) {
  const folded = path.toLowerCase();
  return ENDPOINTS.get(folded.length > 1 && folded.endsWith('/') ? folded.slice(0, -1) : folded);
}

/**
 * A method an endpoint does not take gets 405 with Allow, not the provider's silent 404: RFC 6749
 * JSON on the endpoints programs call, the ja/en 405 page (errorPages) on the others. CORS
 * preflights (OPTIONS) stay the provider's.
 */
export function protocolMethods() {
  return async (ctx: Context, next: Next) => {
    await next();
    if (ctx.status !== 404 || ctx.body || ctx.method === 'OPTIONS') return;
    const endpoint = endpointAt(ctx.path);
    if (!endpoint || endpoint.methods.includes(ctx.method)) return;
    ctx.status = 405;
    ctx.set('Allow', endpoint.methods.join(', '));
    if (!endpoint.json) return;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { error: 'invalid_request', error_description: `this endpoint takes ${endpoint.methods.filter((m) => m !== 'HEAD').join(' or ')}, not ${ctx.method}` };
  };
}
