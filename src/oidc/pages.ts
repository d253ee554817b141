import type { Context } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { MessageKey } from '../i18n/en.ts';
import { translator } from '../i18n/i18n.ts';
import type { Renderer } from '../http/renderer.ts';
import { RetryLaterError } from '../shared/errors.ts';

/** oidc-provider's own pages (logout, errors) drawn in Akamon's style and language. */
export function providerPages(renderer: Renderer) {
  // The provider runs on the app's own context (see provider-holder.ts), so locale and request id are set.
  const koa = (ctx: KoaContextWithOIDC) => ctx as unknown as Context;

  return {
    logoutSource(ctx: KoaContextWithOIDC, form: string) {
      const t = translator(koa(ctx).state.locale);
      const client = ctx.oidc.client?.clientName;
      renderer.page(koa(ctx), 'logout', 'logout.title', { form, lead: client ? t('logout.lead_client', { client }) : t('logout.lead') });
    },
    postLogoutSuccessSource(ctx: KoaContextWithOIDC) {
      renderer.page(koa(ctx), 'logged-out', 'logout.done_title');
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
