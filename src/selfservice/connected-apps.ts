import type Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountRow } from '../account/account.store.ts';
import { localName } from '../client/client-settings.ts';
import { formBody } from '../http/form-body.ts';
import { formatDateTime, translator } from '../i18n/i18n.ts';
import { SCOPE_TEXT } from '../interaction/steps/consent.ts';
import type { ConnectedClient } from '../db/provider-rows.ts';
import { FIRST_PARTY_SITES } from './account-client.ts';
import type { AccountHomeDeps } from './account-home.ts';
import type { HomeSession } from './home-session.ts';

const PAGE = '/account/apps';
/** Akamon's own sites hold grants too; they are this page, not systems to disconnect. */
const OWN_SITES = new Set(FIRST_PARTY_SITES.map((site) => site.clientId));

/** The account's grants, as the account home reads and ends them (oidc-payload.store.ts). */
export interface Grants {
  connectedClients(accountId: string): Promise<ConnectedClient[]>;
  revokeClient(accountId: string, clientId: string): Promise<number>;
}

/**
 * "Connected systems": each system the person's account has granted access to (what it may read,
 * since when, whether it stays connected while they are away), and a way to end that access (a
 * lost phone's mail app, a third-party service no longer used).
 */
export function connectedAppsRoutes(router: Router, deps: AccountHomeDeps, home: HomeSession): void {
  const { signedIn, postedBy, whileLive } = home;

  /** `removed`: the system whose access was just ended (the POST's redirect names it), said if it is gone from the list. */
  async function appsPage(ctx: Context, account: AccountRow, removed: unknown) {
    const t = translator(ctx.state.locale);
    const connected = (await deps.grants.connectedClients(account.id)).filter((c) => !OWN_SITES.has(c.clientId));
    const nameOf = async (clientId: string) => {
      const client = await deps.clients.find(clientId);
      return client ? localName(ctx.state.locale, client.name, client.name_ja) : clientId;
    };
    const apps = await Promise.all(
      connected.map(async (c) => ({
        name: await nameOf(c.clientId),
        since: formatDateTime(ctx.state.locale, c.since, deps.config.timeZone),
        uses: [...c.scopes.filter((scope) => Object.hasOwn(SCOPE_TEXT, scope) && scope !== 'offline_access').map((scope) => t(SCOPE_TEXT[scope]!)), ...(c.offline ? [t('scope.offline_access')] : [])],
        removeAction: `${PAGE}/${encodeURIComponent(c.clientId)}/remove`,
      })),
    );
    const gone = typeof removed === 'string' && removed.length <= 200 && !connected.some((c) => c.clientId === removed) && (await deps.clients.find(removed)) !== undefined;
    deps.renderer.page(ctx, 'account-apps', 'apps.title', { pageUrl: PAGE, apps, removed: gone ? t('apps.removed', { client: await nameOf(removed) }) : null, homeUrl: '/account' });
  }

  router.get(PAGE, async (ctx) => {
    const account = await signedIn(ctx);
    if (!account) return ctx.redirect(`/account/login?back=${encodeURIComponent(PAGE)}`);
    await appsPage(ctx, account, ctx.query.removed);
  });

  router.post(`${PAGE}/:clientId/remove`, formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    const { clientId } = ctx.params;
    // Akamon's own sites are not on the list and keep their grants; any other id ends only this account's.
    const ended = OWN_SITES.has(clientId)
      ? 0
      : await whileLive(ctx, current, async () => {
          const count = await deps.grants.revokeClient(current.account.id, clientId);
          if (count > 0) await deps.audit.record({ actor: 'self', action: 'grant.revoked', accountId: current.account.id, details: { clientId, grants: count } });
          return count;
        });
    if (ended === undefined) return;
    // The page again by GET (a reload sends nothing twice), saying what ended.
    ctx.status = 303;
    ctx.redirect(ended > 0 ? `${PAGE}?removed=${encodeURIComponent(clientId)}` : PAGE);
  });
}
