import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { type ConsoleDeps, consoleSession } from './console-session.ts';
import { helpDeskRoutes } from './help-desk-pages.ts';
import { importRoutes } from './import-page.ts';
import { dashboardRoutes } from './dashboard-page.ts';
import { operatorRoutes } from './operator-pages.ts';

/**
 * The operators' web console (/console): its sign-in, the help desk's pages, and the sections of the
 * other modules, each given the same session (console-session.ts).
 */
export function consoleRoutes(deps: ConsoleDeps): Router {
  const router = new Router();
  router.use('/console', noStore);
  const session = consoleSession(deps, router);
  helpDeskRoutes(router, deps, session);
  importRoutes(router, deps, session);
  dashboardRoutes(router, deps, session);
  operatorRoutes(router, deps, session);
  return router;
}

/**
 * Nothing of the console is kept by a browser or a proxy: its pages name people and their accounts.
 * The strict CSP (no inline script without a nonce, frame-ancestors 'none') is securityHeaders' for every page.
 */
async function noStore(ctx: Context, next: Next) {
  await next();
  ctx.set('Cache-Control', 'no-store');
}
