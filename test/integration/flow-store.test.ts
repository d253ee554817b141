import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { FlowStore, type FlowStoreDeps } from '../../src/flow/flow-store.ts';
import { FLOW_KINDS } from '../../src/flow/flow-kinds.ts';
import { CsrfGuard } from '../../src/http/csrf.ts';
import { Renderer } from '../../src/http/renderer.ts';
import { InteractionStateStore } from '../../src/interaction/interaction-state.store.ts';
import { AnonymousCap, AnonymousCapError } from '../../src/throttle/anonymous-cap.ts';
import { LoginThrottle } from '../../src/throttle/login-throttle.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { FLOW_TURN_WAIT_MS } from '../../src/config/defaults.ts';
import { Browser } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * The typed flow store (src/flow/flow-store.ts) on its own, on both databases: the cookie it sets,
 * what it keeps server-side, what counts as no flow (expired, tampered, forged), one request at a
 * time per flow, and the per-address start limit and anonymous cap of a kind. The store is mounted
 * on a bare Koa app, so these tests see the store and nothing of the recovery or ID-card pages.
 */

interface Shape {
  step: string;
  n: number;
}

const COOKIE_KEY = 'flow-store-test-key';
/** Anonymous records one address may make here: more than the throttle test needs, few enough to reach. */
const CAP = 12;

let handle: TestDatabase;
const db = () => handle.database.db;
const servers: http.Server[] = [];

/** A bare app with one `recover` flow store; `production` as behind the TLS proxy. */
async function flowApp(production = false) {
  const state = new InteractionStateStore(db());
  const throttle = new LoginThrottle(db(), systemClock);
  const csrf = new CsrfGuard(crypto.createSecretKey(Buffer.alloc(32, 1)), production);
  const deps: FlowStoreDeps = {
    config: { production },
    renderer: new Renderer(csrf),
    state,
    throttle,
    anonymousCap: new AnonymousCap(throttle, { perAddress: CAP, windowSeconds: 600, maxStored: 100_000, lifetimeSeconds: 900 }),
  };
  const flows = new FlowStore<Shape>('recover', deps);
  /** Work held open until the test lets it go: a request that keeps its flow's turn. */
  const held: { release?: () => void; ran: number } = { ran: 0 };

  const app = new Koa();
  app.keys = [COOKIE_KEY];
  app.proxy = true;
  app.use(async (ctx, next) => {
    Object.assign(ctx.state, { locale: 'en', requestId: 'test', nonce: 'n' });
    try {
      await next();
    } catch (error) {
      if (!(error instanceof AnonymousCapError)) throw error;
      ctx.status = 429;
      ctx.body = { error: error.code };
    }
  });
  app.use(async (ctx) => {
    if (ctx.path === '/start') {
      const started = await flows.start(ctx, { step: 'one', n: 1 });
      ctx.status = started.ok ? 201 : 429;
      ctx.body = started;
    } else if (ctx.path === '/open') {
      ctx.status = 201;
      ctx.body = { id: await flows.open(ctx, { step: 'one', n: 1 }) };
    } else if (ctx.path === '/flow') {
      await flows.withFlow(ctx, async (current) => {
        ctx.body = { current: current ?? null };
      });
    } else if (ctx.path === '/next') {
      await flows.withFlow(ctx, async (current) => {
        if (!current) {
          ctx.status = 400;
          return;
        }
        await flows.save(current.id, { step: 'two', n: current.flow.n + 1 });
        ctx.body = { n: current.flow.n + 1 };
      });
    } else if (ctx.path === '/hold') {
      await flows.withFlow(ctx, async () => {
        held.ran += 1;
        await new Promise<void>((resolve) => {
          held.release = resolve;
        });
        ctx.body = { held: true };
      });
    }
  });
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, held };
}

let url: string;
let held: Awaited<ReturnType<typeof flowApp>>['held'];

beforeAll(async () => {
  handle = await createTestDatabase();
  ({ url, held } = await flowApp());
});
afterAll(async () => {
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  await handle.database.close();
});

/** A browser at its own source address. */
function browserAt(address: string): Browser {
  const browser = new Browser(url);
  browser.extraHeaders = { 'x-forwarded-for': address };
  return browser;
}

const json = async (response: Response) => ({ status: response.status, body: (await response.json()) as Record<string, any> });
const post = (browser: Browser, path: string) => browser.request(`${url}${path}`, { method: 'POST' });
const stored = async (id: string) => (await db().selectFrom('interaction_state').select(['data', 'expires_at']).where('uid', '=', `recover:${id}`).executeTakeFirst()) ?? null;

/** A cookie value signed as Koa signs it (keygrip: HMAC-SHA1 of `name=value`, base64url). */
const signature = (name: string, value: string) => crypto.createHmac('sha1', COOKIE_KEY).update(`${name}=${value}`).digest('base64url');

describe('flow store', () => {
  test('start stores the initial state under the kind and hands the browser a signed, httpOnly cookie for the kind’s lifetime', async () => {
    const browser = browserAt('192.0.2.1');
    const response = await post(browser, '/start');
    const { status, body } = await json(response);
    expect(status).toBe(201);
    expect(body.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const cookie = response.headers.getSetCookie().find((line) => line.startsWith('akamon_recover='))!;
    expect(cookie).toContain(`akamon_recover=${body.id}`);
    const expires = new Date(/; expires=([^;]+)/.exec(cookie)![1]).getTime();
    expect(Math.abs(expires - Date.now() - FLOW_KINDS.recover.lifetimeSeconds * 1000)).toBeLessThan(5000);
    expect(cookie).toMatch(/; path=\//);
    expect(cookie).toMatch(/; samesite=lax/);
    expect(cookie).toMatch(/; httponly/);
    expect(cookie).not.toMatch(/; secure/);
    expect(response.headers.getSetCookie().some((line) => line.startsWith('akamon_recover.sig='))).toBe(true);

    const row = await stored(body.id);
    expect(row?.data).toEqual({ step: 'one', n: 1 });
    expect((row!.expires_at.getTime() - Date.now()) / 1000).toBeGreaterThan(FLOW_KINDS.recover.lifetimeSeconds - 20);

    // The browser's later requests find it, and each step's save is there for the next.
    expect(await json(await browser.request(`${url}/flow`))).toEqual({ status: 200, body: { current: { id: body.id, flow: { step: 'one', n: 1 } } } });
    expect((await json(await post(browser, '/next'))).body).toEqual({ n: 2 });
    expect((await json(await browser.request(`${url}/flow`))).body.current.flow).toEqual({ step: 'two', n: 2 });
    // Another browser has no flow.
    expect((await json(await browserAt('192.0.2.1').request(`${url}/flow`))).body).toEqual({ current: null });
  });

  test('a flow past its lifetime is no flow, and a step on it does not bring it back', async () => {
    const browser = browserAt('192.0.2.2');
    const { body } = await json(await post(browser, '/start'));
    await db()
      .updateTable('interaction_state')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('uid', '=', `recover:${body.id}`)
      .execute();
    expect((await json(await browser.request(`${url}/flow`))).body).toEqual({ current: null });
    expect((await post(browser, '/next')).status).toBe(400);
    expect((await stored(body.id))?.data).toEqual({});
  });

  test('a cookie changed, forged or signed but not an id carries no flow', async () => {
    const browser = browserAt('192.0.2.3');
    const { body } = await json(await post(browser, '/start'));
    const other = browserAt('192.0.2.3');
    const { body: theirs } = await json(await post(other, '/start'));
    const sig = browser.cookies.get('akamon_recover.sig;/')!.value;

    // Someone else's flow id under this browser's signature.
    browser.cookies.set('akamon_recover;/', { name: 'akamon_recover', value: theirs.id, path: '/' });
    expect((await json(await browser.request(`${url}/flow`))).body).toEqual({ current: null });
    // No signature at all.
    const unsigned = browserAt('192.0.2.3');
    unsigned.cookies.set('akamon_recover;/', { name: 'akamon_recover', value: body.id, path: '/' });
    expect((await json(await unsigned.request(`${url}/flow`))).body).toEqual({ current: null });
    // A signature made with another key.
    const forged = browserAt('192.0.2.3');
    forged.cookies.set('akamon_recover;/', { name: 'akamon_recover', value: body.id, path: '/' });
    forged.cookies.set('akamon_recover.sig;/', { name: 'akamon_recover.sig', value: crypto.createHmac('sha1', 'another-key').update(`akamon_recover=${body.id}`).digest('base64url'), path: '/' });
    expect((await json(await forged.request(`${url}/flow`))).body).toEqual({ current: null });
    // Rightly signed, but not the shape of an id (a key of another row must not be reachable).
    const odd = browserAt('192.0.2.3');
    for (const value of ['x', `${body.id}x`, '../idv:abc']) {
      odd.cookies.set('akamon_recover;/', { name: 'akamon_recover', value, path: '/' });
      odd.cookies.set('akamon_recover.sig;/', { name: 'akamon_recover.sig', value: signature('akamon_recover', value), path: '/' });
      expect((await json(await odd.request(`${url}/flow`))).body).toEqual({ current: null });
    }
    // The genuine cookie still works, and the other flow was not touched.
    const genuine = browserAt('192.0.2.3');
    genuine.cookies.set('akamon_recover;/', { name: 'akamon_recover', value: body.id, path: '/' });
    genuine.cookies.set('akamon_recover.sig;/', { name: 'akamon_recover.sig', value: sig, path: '/' });
    expect((await json(await genuine.request(`${url}/flow`))).body.current.id).toBe(body.id);
    expect((await stored(theirs.id))?.data).toEqual({ step: 'one', n: 1 });
  });

  test('two requests for one flow: one runs, the other waits its turn out and answers 409 without running', async () => {
    const browser = browserAt('192.0.2.4');
    await post(browser, '/start');
    const before = held.ran;
    const first = post(browser, '/hold');
    while (held.ran === before) await new Promise((resolve) => setTimeout(resolve, 10));
    const startedAt = Date.now();
    const second = await post(browser, '/hold');
    expect(second.status).toBe(409);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(FLOW_TURN_WAIT_MS - 500);
    expect(await second.text()).toContain('This was already done or conflicts with a change made at the same time');
    expect(held.ran).toBe(before + 1);
    held.release!();
    expect((await json(await first)).body).toEqual({ held: true });
    // The turn was given back: the flow goes on.
    expect((await json(await post(browser, '/next'))).body).toEqual({ n: 2 });
  }, 20_000);

  test('starts from one address are limited by the kind’s rule; refused, nothing is stored and no cookie set', async () => {
    const { free } = FLOW_KINDS.recover.startLimit;
    const browser = browserAt('192.0.2.5');
    const ids: string[] = [];
    for (let i = 0; i < free; i += 1) {
      const { status, body } = await json(await post(browser, '/start'));
      expect(status).toBe(201);
      ids.push(body.id);
    }
    const refused = await post(browser, '/start');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(FLOW_KINDS.recover.startLimit.baseSeconds - 1);
    expect(refused.headers.getSetCookie()).toEqual([]);
    expect((await refused.json()) as unknown).toMatchObject({ ok: false, waitSeconds: expect.any(Number) });
    expect((await json(await browser.request(`${url}/flow`))).body.current.id).toBe(ids.at(-1));
    const counted = await db().selectFrom('throttle').select('failures').where('key', '=', 'recover:address:192.0.2.5').executeTakeFirstOrThrow();
    expect(counted.failures).toBe(free);
    // Another address is not held back; `open` (a flow whose costly step comes later) is not limited.
    expect((await post(browserAt('192.0.2.6'), '/start')).status).toBe(201);
    expect((await post(browser, '/open')).status).toBe(201);
  });

  test('every flow opened counts against the address’s anonymous cap; over it, nothing is stored', async () => {
    const browser = browserAt('192.0.2.7');
    const rows = async () => (await db().selectFrom('interaction_state').select('uid').where('uid', 'like', 'recover:%').execute()).length;
    for (let i = 0; i < CAP; i += 1) expect((await post(browser, '/open')).status).toBe(201);
    const before = await rows();
    const refused = await post(browser, '/open');
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({ error: 'rate_limited' });
    expect(await rows()).toBe(before);
  });

  test('in production the cookie is __Host- prefixed and Secure', async () => {
    const production = await flowApp(true);
    const response = await fetch(`${production.url}/start`, { method: 'POST', headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '192.0.2.8' } });
    expect(response.status).toBe(201);
    const cookie = response.headers.getSetCookie().find((line) => line.startsWith('__Host-akamon_recover='))!;
    expect(cookie).toMatch(/; path=\//);
    expect(cookie).toMatch(/; secure/);
    expect(cookie).not.toMatch(/; domain=/);
  });
});
