import type Router from '@koa/router';
import compose from 'koa-compose';
import type { Context, Middleware } from 'koa';

/** The first segment of a path ("/admin/api/x" → "admin"), lower-cased as the routers match by default. */
const firstSegment = (path: string) => {
  const end = path.indexOf('/', 1);
  return (end === -1 ? path.slice(1) : path.slice(1, end)).toLowerCase();
};

/**
 * Akamon's own routers, mounted before the provider. Each router tries every pattern it has on
 * every request, and most requests are the provider's (/auth, /token, /me): the table knows the
 * first path segments the routers serve, so those requests pass by without a pattern tried.
 */
export class RouteTable {
  readonly #routers: readonly Router[];
  readonly #segments = new Set<string>();
  /** A route with a pattern in its first segment may match any path. */
  #anyPath = false;

  constructor(routers: readonly Router[]) {
    this.#routers = routers;
    for (const router of routers) {
      // A router runs its middleware (`use`) only on a path one of its routes matches: routes alone say which paths it serves.
      for (const { path, methods } of router.stack) {
        if (methods.length === 0) continue;
        const segment = typeof path === 'string' && path.startsWith('/') ? firstSegment(path) : undefined;
        if (segment === undefined || /[:*({\\[]/.test(segment)) this.#anyPath = true;
        else this.#segments.add(segment);
      }
    }
  }

  /** False when no router can serve the path: the provider's paths, and anything unknown. */
  mayServe(path: string): boolean {
    return this.#anyPath || this.#segments.has(firstSegment(path));
  }

  /** Every router's routes and allowed methods, in order, for the paths they may serve. */
  middleware(): Middleware {
    // The routers' middleware types carry their own context; at the app's level they are plain middleware.
    const all = compose(this.#routers.flatMap((router) => [router.routes(), router.allowedMethods()]) as Middleware[]);
    return (ctx, next) => (this.mayServe(ctx.path) ? all(ctx, next) : next());
  }

  /** Whether one of the routers has a route (not only a middleware) for this request's path and method. */
  serves(ctx: Context): boolean {
    return this.mayServe(ctx.path) && this.#routers.some((router) => router.match(ctx.path, ctx.method).path.some((layer) => layer.methods.length > 0));
  }
}
