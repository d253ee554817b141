import type { Context, Next } from 'koa';

/**
 * Every URL Akamon makes (discovery's endpoints, redirects, form actions, logout notices) is under
 * AKAMON_ISSUER, whatever Host or X-Forwarded-Host a request carried. oidc-provider builds its URLs
 * from the request's host, so a relying party that fetched discovery through another name (an
 * internal alias, a load balancer's address) would be sent to endpoints there, and the single
 * sign-on session would split between two cookie domains. Machines are answered as if they had used
 * the issuer's name; a browser asking for a page under another name is sent to the issuer's, so its
 * cookies live under one name.
 */
export function issuerHost(issuer: string) {
  const { host, origin } = new URL(issuer);
  return async (ctx: Context, next: Next) => {
    const asked = ctx.host;
    // A page navigation (Accept names HTML explicitly; probes and API clients do not).
    if (asked !== host && (ctx.method === 'GET' || ctx.method === 'HEAD') && /\btext\/html\b/i.test(ctx.get('accept'))) {
      ctx.status = 308;
      ctx.redirect(`${origin}${ctx.originalUrl}`);
      return;
    }
    ctx.request.header.host = host;
    delete ctx.request.header['x-forwarded-host'];
    await next();
  };
}
