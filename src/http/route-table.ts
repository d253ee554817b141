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
  /** The routers with a route under each first segment, in their order (with those that may match any path). */
  readonly #bySegment = new Map<string, Router[]>();
  /** Routers with a route whose first segment is a pattern: they may match any path. */
  readonly #anyPath: Router[];

  constructor(routers: readonly Router[]) {
    const segments = new Map<Router, Set<string>>();
    const anyPath = new Set<Router>();
    for (const router of routers) {
      // A router runs its middleware (`use`) only on a path one of its routes matches: routes alone say which paths it serves.
      for (const { path, methods } of router.stack) {
        if (methods.length === 0) continue;
        const segment = typeof path === 'string' && path.startsWith('/') ? firstSegment(path) : undefined;
        if (segment === undefined || /[:*({\\[]/.test(segment)) anyPath.add(router);
        else segments.set(router, (segments.get(router) ?? new Set()).add(segment));
      }
    }
    this.#anyPath = routers.filter((router) => anyPath.has(router));
    for (const segment of new Set([...segments.values()].flatMap((set) => [...set]))) {
      this.#bySegment.set(
        segment,
        routers.filter((router) => anyPath.has(router) || segments.get(router)?.has(segment)),
      );
    }
  }

  /** The routers that may serve the path, in their order: none for the provider's paths and anything unknown. */
  #serving(path: string): readonly Router[] {
    return this.#bySegment.get(firstSegment(path)) ?? this.#anyPath;
  }

  /** False when no router can serve the path: the provider's paths, and anything unknown. */
  mayServe(path: string): boolean {
    return this.#serving(path).length > 0;
  }

  /**
   * The routes and allowed methods of the routers that may serve the path, in order: a router tries
   * every pattern it has on every request it sees, so a path is shown only to the routers with a
   * route under its first segment (composed once per segment, at start).
   */
  middleware(): Middleware {
    // The routers' middleware types carry their own context; at the app's level they are plain middleware.
    const of = (routers: readonly Router[]) => compose(routers.flatMap((router) => [router.routes(), router.allowedMethods()]) as Middleware[]);
    const bySegment = new Map([...this.#bySegment].map(([segment, routers]) => [segment, of(routers)]));
    const anyPath = this.#anyPath.length > 0 ? of(this.#anyPath) : undefined;
    return (ctx, next) => {
      const middleware = bySegment.get(firstSegment(ctx.path)) ?? anyPath;
      return middleware ? middleware(ctx, next) : next();
    };
  }

  /** Whether one of the routers has a route (not only a middleware) for this request's path and method. */
  serves(ctx: Context): boolean {
    return this.#serving(ctx.path).some((router) => router.match(ctx.path, ctx.method).path.some((layer) => layer.methods.length > 0));
  }
}
