import { expect, test } from '@jest/globals';
import Router from '@koa/router';
import Koa from 'koa';
import request from 'supertest';
import { RouteTable } from '../../src/http/route-table.ts';

/** Two routers (one with a prefix) in front of a stand-in for the provider that answers everything else. */
function setUp(extra?: (router: Router) => void) {
  const pages = new Router();
  pages.get('/', (ctx) => {
    ctx.body = 'home';
  });
  pages.get('/account/:section', (ctx) => {
    ctx.body = `account ${ctx.params.section}`;
  });
  const recovery = new Router({ prefix: '/recover' });
  recovery.post('/start', (ctx) => {
    ctx.body = 'recovery';
  });
  extra?.(pages);
  const routes = new RouteTable([pages, recovery]);
  const app = new Koa();
  app.use(routes.middleware());
  // Like the provider: what it has no route for is left a 404, which a router's allowedMethods turns into 405.
  app.use((ctx) => {
    if (ctx.method === 'GET') ctx.body = 'provider';
  });
  return { routes, server: app.callback() };
}

test("the provider's paths pass by the routers, and the routers' paths are served whatever their letter case", async () => {
  const { routes, server } = setUp();
  for (const path of ['/token', '/me', '/auth/abc', '/.well-known/openid-configuration', '/recovery']) {
    expect(routes.mayServe(path)).toBe(false);
    expect((await request(server).get(path)).text).toBe('provider');
  }
  expect((await request(server).get('/')).text).toBe('home');
  expect((await request(server).get('/Account/mail')).text).toBe('account mail');
  expect((await request(server).post('/recover/start')).text).toBe('recovery');
});

test("a router's path with another method is still answered by its router (405 with Allow), not by the provider", async () => {
  const { server } = setUp();
  const answer = await request(server).delete('/account/mail');
  expect(answer.status).toBe(405);
  expect(answer.headers.allow).toContain('GET');
  // A path of a router's segment that no route has falls through to the provider, as without the table.
  expect((await request(server).get('/account/a/b')).text).toBe('provider');
});

test('a router whose first segment is a pattern may serve any path, so nothing passes by', async () => {
  const { routes, server } = setUp((router) =>
    router.get('/:anything/x', (ctx) => {
      ctx.body = 'pattern';
    }),
  );
  expect(routes.mayServe('/token')).toBe(true);
  expect((await request(server).get('/token/x')).text).toBe('pattern');
});

test('serves: only a route for the path counts, not a path-less middleware', () => {
  const { routes } = setUp();
  const ctx = (method: string, path: string) => ({ method, path }) as Parameters<RouteTable['serves']>[0];
  expect(routes.serves(ctx('GET', '/account/mail'))).toBe(true);
  expect(routes.serves(ctx('GET', '/token'))).toBe(false);
  expect(routes.serves(ctx('GET', '/account/a/b'))).toBe(false);
});
