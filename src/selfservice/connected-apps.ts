import type Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountRow } from '../account/account.store.ts';
import { localName } from '../client/client-settings.ts';
import { formBody } from '../http/form-body.ts';
import { formatDateTime, translator } from '../i18n/i18n.ts';
import { SCOPE_TEXT } from '../interaction/steps/consent.ts';
import type { ConnectedClient } from '../db/provider-rows.ts';
import { FIRST_PARTY_CLIENT_IDS } from './account-client.ts';
import type { AccountHomeDeps } from './account-home.ts';
import type { HomeSession } from './home-session.ts';

const PAGE = '/account/apps';
/** The notice of a removal, for the page the POST redirects to: named for the account, read once. */
const REMOVED_COOKIE = 'akamon_home_removed';
const REMOVED_SECONDS = 600;

/** The account's grants, as the account home reads and ends them (oidc-payload.store.ts). */
export interface Grants {
  connectedClients(accountId: string): Promise<ConnectedClient[]>;
  revokeClient(accountId: string, clientId: string): Promise<{ grants: number; signIns: number }>;
  lockSessionsOf(accountId: string): Promise<void>;
}

/**
 * "Connected systems": each system the person's account has granted access to (what it may read,
 * since when, whether it stays connected while they are away), and a way to end that access (a
 * lost phone's mail app, a third-party service no longer used). Akamon's own sites are not listed.
 */
export function connectedAppsRoutes(router: Router, deps: AccountHomeDeps, home: HomeSession): void {
  const { cookie, setCookie, signedIn, postedBy, whileLive } = home;

  /** The system whose access this account just removed, if the POST before this page said so. */
  function takeRemoved(ctx: Context, account: AccountRow): string | undefined {
    const raw = ctx.cookies.get(cookie(REMOVED_COOKIE), { signed: true });
    if (!raw) return undefined;
    setCookie(ctx, REMOVED_COOKIE, null, 0);
    // A client id may hold a "|"; the account id before it does not.
    const at = raw.indexOf('|');
    return raw.slice(0, at) === account.id ? raw.slice(at + 1) : undefined;
  }

  async function appsPage(ctx: Context, account: AccountRow) {
    const t = translator(ctx.state.locale);
    const connected = (await deps.grants.connectedClients(account.id)).filter((c) => !FIRST_PARTY_CLIENT_IDS.includes(c.clientId));
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
    const removed = takeRemoved(ctx, account);
    deps.renderer.page(ctx, 'account-apps', 'apps.title', { pageUrl: PAGE, apps, removed: removed ? t('apps.removed', { client: await nameOf(removed) }) : null, homeUrl: '/account' });
  }

  router.get(PAGE, async (ctx) => {
    const account = await signedIn(ctx);
    if (!account) return ctx.redirect(`/account/login?back=${encodeURIComponent(PAGE)}`);
    await appsPage(ctx, account);
  });

  router.post(`${PAGE}/:clientId/remove`, formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    const { clientId } = ctx.params;
    const accountId = current.account.id;
    // Akamon's own sites are not on the list and keep their grants; any other id ends only this account's.
    const ended = FIRST_PARTY_CLIENT_IDS.includes(clientId)
      ? { grants: 0, signIns: 0 }
      : await deps.unitOfWork(async () => {
          // The sessions first, as every change that ends them takes them (whileLive's hold would
          // otherwise meet a second Remove access's, each waiting for the other).
          await deps.grants.lockSessionsOf(accountId);
          return whileLive(ctx, current, async () => {
            const count = await deps.grants.revokeClient(accountId, clientId);
            if (count.grants + count.signIns > 0) await deps.audit.record({ actor: 'self', action: 'grant.revoked', accountId, details: { clientId, ...count } });
            return count;
          });
        });
    if (ended === undefined) return;
    if (ended.grants + ended.signIns > 0) setCookie(ctx, REMOVED_COOKIE, `${accountId}|${clientId}`, REMOVED_SECONDS);
    // The page again by GET (a reload sends nothing twice), saying what ended.
    ctx.status = 303;
    ctx.redirect(PAGE);
  });
}
