import type Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountRow } from '../account/account.store.ts';
import { formBody } from '../http/form-body.ts';
import type { MessageKey } from '../i18n/en.ts';
import { formatDateTime, translator } from '../i18n/i18n.ts';
import type { AccountHomeDeps } from './account-home.ts';
import type { HomeSession } from './home-session.ts';

/**
 * "Identity verification" on the account home (/account/idv): pre-linking the account to the
 * person's national ID card while they can still sign in, its status, and removing the link.
 * Linking needs a fresh second factor when the account has one; removing needs a fresh sign-in.
 */
export function identityLinkRoutes(router: Router, deps: AccountHomeDeps, home: HomeSession): void {
  const { signedIn, postedBy, freshEnough, whileLive } = home;

  async function linkPage(ctx: Context, account: AccountRow, notice: { message?: MessageKey; error?: MessageKey } = {}, status = 200) {
    const t = translator(ctx.state.locale);
    const link = await deps.idv.linkOf(account.id);
    deps.renderer.page(
      ctx,
      'identity-link',
      'idv.link_title',
      {
        pageUrl: '/account/idv',
        available: Boolean(deps.idvFlow),
        link: link ? { name: link.name, linkedAt: formatDateTime(ctx.state.locale, link.linked_at, deps.config.timeZone) } : null,
        linkAction: '/account/idv/link',
        unlinkAction: '/account/idv/unlink',
        message: notice.message ? t(notice.message) : null,
        error: notice.error ? t(notice.error) : null,
      },
      status,
    );
  }

  router.get('/account/idv', async (ctx) => {
    const account = await signedIn(ctx);
    if (!account) return ctx.redirect('/account/login?back=%2Faccount%2Fidv');
    await linkPage(ctx, account);
  });

  router.post('/account/idv/link', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    if (!deps.idvFlow) return deps.renderer.error(ctx, 'idv.unavailable', 503);
    if (!(await freshEnough(ctx, current, '/account/idv'))) return;
    await deps.idvFlow.begin(ctx, 'link', { accountId: current.account.id });
  });

  // Back from the upstream provider with the verified identity of this browser's link flow.
  // The link is made while the sign-in that asked for it (with a fresh factor) is held live.
  router.get('/account/idv/linked', async (ctx) => {
    const current = await home.session(ctx);
    if (!current) return ctx.redirect('/account/login?back=%2Faccount%2Fidv');
    const { account } = current;
    if (!deps.idvFlow) return deps.renderer.error(ctx, 'error.expired', 400);
    await deps.idvFlow.takeLink(ctx, account.id, async (identity) => {
      if (!identity) return deps.renderer.error(ctx, 'error.expired', 400);
      const linked = await whileLive(ctx, current, () => deps.idv.link(account, identity));
      if (linked === undefined) return;
      if (!linked) return linkPage(ctx, account, { error: 'idv.link_taken' }, 409);
      await linkPage(ctx, account, { message: 'idv.linked' });
    });
  });

  router.post('/account/idv/unlink', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    if (!(await freshEnough(ctx, current, '/account/idv'))) return;
    if ((await whileLive(ctx, current, () => deps.idv.unlink(current.account.id, 'self'))) === undefined) return;
    await linkPage(ctx, current.account, { message: 'idv.unlinked' });
  });
}
