import type { Context } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { MessageKey } from '../i18n/en.ts';
import { translator } from '../i18n/i18n.ts';
import type { Renderer } from '../http/renderer.ts';
import { RetryLaterError } from '../shared/errors.ts';
import { clientDisplayName } from '../client/client-settings.ts';

/** One of Akamon's own sites (selfservice/account-client.ts FIRST_PARTY_SITES), as these pages need it. */
export interface OwnSite {
  clientId: string;
  /** Its sign-in is `${prefix}/login`. */
  prefix: string;
  /** How Akamon's sentences name it. */
  ownName: MessageKey;
}

/**
 * oidc-provider's own pages (logout, errors) drawn in Akamon's style and language. `ownSites` are
 * Akamon's first-party clients: their Sign out buttons lead to the logout page, which then speaks
 * as Akamon's confirmation rather than as another system asking, and "Sign in again" leads back to
 * the site the person left (named by the provider after "Stay signed in", else by `siteSignedOutOf`).
 */
export function providerPages(renderer: Renderer, ownSites: readonly OwnSite[], siteSignedOutOf: (ctx: Context) => string | undefined) {
  // The provider runs on the app's own context (see provider-holder.ts), so locale and request id are set.
  const koa = (ctx: KoaContextWithOIDC) => ctx as unknown as Context;
  const ownSite = (clientId: string | undefined) => ownSites.find((site) => site.clientId === clientId);

  return {
    logoutSource(ctx: KoaContextWithOIDC, form: string) {
      const t = translator(koa(ctx).state.locale);
      const client = ctx.oidc.client;
      const lead = client && !ownSite(client.clientId) ? t('logout.lead_client', { client: clientDisplayName(client, koa(ctx).state.locale) }) : t('logout.lead');
      renderer.page(koa(ctx), 'logout', 'logout.title', { form, lead });
    },
    // The provider names the client here only when the person chose "Stay signed in": then only
    // that system's sign-in ended, and the page must not say they left Akamon.
    postLogoutSuccessSource(ctx: KoaContextWithOIDC) {
      const client = ctx.oidc.client;
      const t = translator(koa(ctx).state.locale);
      // Taken either way, so that it never names a later sign-out's site.
      const signedOutOf = siteSignedOutOf(koa(ctx));
      const site = ownSite(client ? client.clientId : signedOutOf);
      const stayed = client ? t('logout.done_client_body', { client: site ? t(site.ownName) : clientDisplayName(client, koa(ctx).state.locale) }) : null;
      renderer.page(koa(ctx), 'logged-out', 'logout.done_title', { stayed, signInUrl: `${site?.prefix ?? '/account'}/login` });
    },
    renderError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }, error: Error) {
      if (error instanceof RetryLaterError) return renderer.retryLater(koa(ctx), error);
      const status = Math.max(ctx.status, 400);
      const known: Record<string, MessageKey> = {
        invalid_client: 'error.invalid_client',
        invalid_redirect_uri: 'error.invalid_redirect_uri',
        invalid_request: 'error.bad_request',
        session_not_found: 'error.expired',
      };
      // Not logged here: a refusal is logged with its reasons by error-log.ts, a server error by app.ts.
      renderer.error(koa(ctx), known[out.error] ?? 'error.generic', status);
    },
  };
}
