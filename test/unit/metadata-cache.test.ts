import { expect, test } from '@jest/globals';
import Koa from 'koa';
import request from 'supertest';
import type Provider from 'oidc-provider';
import { metadataCache } from '../../src/oidc/metadata-cache.ts';

/**
 * Behind the cache, a stand-in for the provider that counts what it answers: discovery, JWKS and
 * userinfo, with oidc-provider's CORS headers (the Origin echoed, or * without one).
 */
function setUp() {
  const state = { provider: {} as Provider, answered: 0 };
  const app = new Koa();
  app.use(metadataCache(() => state.provider, 'http://idp.example'));
  app.use((ctx) => {
    state.answered += 1;
    // Like oidc-provider's router: any letter case, and a trailing slash, reach the same route.
    const path = ctx.path.toLowerCase().replace(/\/$/, '');
    const route = ({ '/jwks': 'jwks', '/.well-known/openid-configuration': 'discovery' } as Record<string, string>)[path] ?? 'userinfo';
    Object.defineProperty(ctx, 'oidc', { value: { route } });
    ctx.vary('Origin');
    ctx.set('Access-Control-Allow-Origin', ctx.get('origin') || '*');
    ctx.body = { host: ctx.host, answer: state.answered };
  });
  const server = app.callback();
  const get = (path: string, headers: Record<string, string> = {}) =>
    request(server)
      .get(path)
      .set({ host: 'idp.example', ...headers });
  return { state, get };
}

test('a second plain GET of discovery or JWKS is replayed without reaching the provider, body and headers alike', async () => {
  const { state, get } = setUp();
  for (const path of ['/jwks', '/.well-known/openid-configuration']) {
    const first = await get(path);
    const second = await get(path);
    expect(second.status).toBe(200);
    expect(second.text).toBe(first.text);
    for (const name of ['content-type', 'access-control-allow-origin', 'vary']) expect(second.headers[name]).toBe(first.headers[name]);
  }
  expect(state.answered).toBe(2);
});

test('other hosts, cross-origin requests, other routes and other methods always reach the provider', async () => {
  const { state, get } = setUp();
  await get('/jwks');
  const forged = await get('/jwks', { host: 'attacker.example' });
  expect(forged.body.host).toBe('attacker.example');
  const cors = await get('/jwks', { origin: 'https://spa.example' });
  expect(cors.headers['access-control-allow-origin']).toBe('https://spa.example');
  await get('/me');
  await get('/me');
  expect(state.answered).toBe(5);
  // And none of them was kept: the plain request is still the first answer.
  expect((await get('/jwks')).body).toEqual({ host: 'idp.example', answer: 1 });
});

test('other spellings of the paths are answered by the provider every time and never stored', async () => {
  const { state, get } = setUp();
  await get('/jwks');
  for (const path of ['/JWKS', '/jwks/', '/.Well-Known/OpenID-Configuration', '/.well-known/openid-configuration/']) {
    expect((await get(path)).status).toBe(200);
    expect((await get(path)).status).toBe(200);
  }
  expect(state.answered).toBe(9);
});

test('a new provider instance (a key rotation) starts an empty cache', async () => {
  const { state, get } = setUp();
  await get('/jwks');
  state.provider = {} as Provider;
  expect((await get('/jwks')).body.answer).toBe(2);
  expect((await get('/jwks')).body.answer).toBe(2);
});
