import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import compose from 'koa-compose';
import { sql } from 'kysely';
import { SecretBox } from '../../src/crypto/secret-box.ts';
import { hmac } from '../../src/crypto/tokens.ts';
import { pairwiseValue, type Subject } from '../../src/saml/attributes.ts';
import { ACCOUNT_COLUMNS } from '../../src/account/account.store.ts';
import { RouteTable } from '../../src/http/route-table.ts';
import { InteractionStateStore } from '../../src/interaction/interaction-state.store.ts';
import { LoginThrottle, type ThrottleRule } from '../../src/throttle/login-throttle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

// What the hot path's shortcuts must not change (issue 15, round ten): HMAC keys made once give the
// digests the raw keys gave, statements compiled once bind every run's values (on any database
// handle), and the route table's routers per first segment answer as all of them composed did.

let a: TestDatabase;
let b: TestDatabase;

beforeAll(async () => {
  [a, b] = await Promise.all([createTestDatabase(), createTestDatabase()]);
});
afterAll(async () => {
  await Promise.all([a.database.close(), b.database.close()]);
});

describe('HMAC keys made once (SecretBox.macKey)', () => {
  const box = new SecretBox('review-secret-0123456789-abcdefghijklmnopqrstuvwxyz');
  test('every purpose gives the digest the raw derived key gave (stored app-password digests, pairwise subjects)', () => {
    for (const purpose of ['csrf', 'pairwise-subject', 'saml-pairwise', 'otp-code', 'app-password', 'hash-census']) {
      for (const value of ['', 'v', 'https://rp.example|3f0c2b1e-0000-4000-8000-000000000000', '日本語']) {
        expect(hmac(box.macKey(purpose), value)).toBe(createHmac('sha256', box.deriveKey(purpose)).update(value).digest('base64url'));
      }
    }
    const subject = { sp: 'https://sp.example/shibboleth', account: { id: '3f0c2b1e-0000-4000-8000-000000000000' } } as unknown as Subject;
    const before = createHmac('sha256', box.deriveKey('saml-pairwise')).update(`${subject.sp}|${subject.account.id}`).digest('base64url').replace(/[-_]/g, '').slice(0, 32).toLowerCase();
    expect(pairwiseValue({ ...subject, pairwiseKey: box.macKey('saml-pairwise') })).toBe(before);
  });
});

describe('statements compiled once', () => {
  test('the prepared account read names every column the account table has', async () => {
    for (const handle of [a, b]) {
      const { rows } = await sql<{ column_name: string }>`select column_name from information_schema.columns where table_name = 'account' and table_schema = current_schema()`.execute(
        handle.database.db,
      );
      expect(rows.map((row) => row.column_name).sort()).toEqual([...ACCOUNT_COLUMNS].sort());
    }
  });

  test('the interaction reads and turn ends, compiled on one database, run on another', async () => {
    const uid = `review-${process.pid}`;
    // Compiled against database a (no such interaction there)...
    const onA = new InteractionStateStore(a.database.db);
    expect(await onA.takeInteractionTurn(uid, 'token-a', 30)).toEqual({});
    expect(await onA.getWithInteraction(uid)).toEqual({});
    await onA.endTurn(uid, 'token-a', { nothing: true }, 60);
    // ... and run against database b, where it exists.
    await sql`insert into oidc_payload (model, id, payload, expires_at) values ('Interaction', ${uid}, '{}'::jsonb, now() + interval '1 hour')`.execute(b.database.db);
    const onB = new InteractionStateStore(b.database.db);
    await onB.merge(uid, { x: 1 }, 60);
    expect(await onB.takeInteractionTurn(uid, 'token-1', 30)).toEqual({ x: 1 });
    expect(await onB.takeInteractionTurn(uid, 'token-2', 30)).toBeUndefined();
    await onB.endTurn(uid, 'token-2', { wrong: true }, 60);
    await onB.endTurn(uid, 'token-1', { y: 2 }, 60);
    expect(await onB.getWithInteraction(uid)).toEqual({ x: 1, y: 2 });
    expect(await onB.takeInteractionTurn(uid, 'token-2', 30)).toEqual({ x: 1, y: 2 });
    // Nothing was written on a.
    expect(await onA.get(uid)).toEqual({});
  });

  test("the throttle's claim binds each run's time, keys and rule values (same number of keys, other rules, a moving clock)", async () => {
    let reading = Date.parse('2030-01-01T00:00:00Z');
    const throttle = new LoginThrottle(a.database.db, { now: () => new Date(reading) });
    const rule = (free: number, extra: Partial<ThrottleRule> = {}): ThrottleRule => ({ free, baseSeconds: 60, maxSeconds: 60, ...extra });
    const one = { key: `review:one:${process.pid}`, rule: rule(1) };
    expect(await throttle.reserve([one])).toEqual({ waitSeconds: 0, blocked: false });
    // Its one free guess is in flight.
    expect((await throttle.reserve([one])).waitSeconds).toBeGreaterThan(0);
    // A reservation older than its expiry (30 s) stops counting: the run's own time.
    reading += 31_000;
    expect(await throttle.reserve([one])).toEqual({ waitSeconds: 0, blocked: false });
    // The same statement (one key) with another rule: three in flight allowed, not one.
    const three = { key: `review:three:${process.pid}`, rule: rule(3) };
    for (let i = 0; i < 3; i += 1) expect(await throttle.reserve([three])).toEqual({ waitSeconds: 0, blocked: false });
    expect((await throttle.reserve([three])).waitSeconds).toBeGreaterThan(0);
    // A hard stop given in this run only.
    const stopped = { key: `review:stopped:${process.pid}`, rule: rule(100, { hardStop: 2 }) };
    await sql`insert into throttle (key, failures, pending) values (${stopped.key}, 2, 0)`.execute(a.database.db);
    expect(await throttle.reserve([stopped])).toEqual({ waitSeconds: 0, blocked: true });
    // Failures forgotten after a quiet spell, in this run only.
    const forgetting = { key: `review:forget:${process.pid}`, rule: rule(1, { forgetAfterSeconds: 10 }) };
    await sql`insert into throttle (key, failures, pending, last_failure_at) values (${forgetting.key}, 5, 0, ${new Date(reading - 60_000)}::timestamptz)`.execute(a.database.db);
    expect(await throttle.reserve([forgetting])).toEqual({ waitSeconds: 0, blocked: false });
    expect((await sql<{ failures: number }>`select failures from throttle where key = ${forgetting.key}`.execute(a.database.db)).rows).toEqual([{ failures: 0 }]);
    // Two keys: the second's rule and key are its own.
    const first = { key: `review:pair-1:${process.pid}`, rule: rule(5) };
    const second = { key: `review:pair-2:${process.pid}`, rule: rule(1) };
    expect(await throttle.reserve([first, second])).toEqual({ waitSeconds: 0, blocked: false });
    expect((await throttle.reserve([first, second])).waitSeconds).toBeGreaterThan(0);
    const { rows } = await sql<{ key: string; pending: number }>`select key, pending from throttle where key in (${first.key}, ${second.key}) order by key`.execute(a.database.db);
    // The refused second claim gave the first key's back.
    expect(rows).toEqual([
      { key: first.key, pending: 1 },
      { key: second.key, pending: 1 },
    ]);
  });
});

describe('route table: routers per first segment', () => {
  const ok =
    (body: string): Middleware =>
    (ctx) => {
      ctx.body = body;
    };
  function routers(anyPath: boolean): Router[] {
    const r1 = new Router();
    r1.use(async (ctx, next) => {
      ctx.set('x-r1', 'ran');
      await next();
    });
    r1.get('/a', ok('r1 get /a'));
    r1.post('/a/x', ok('r1 post /a/x'));
    r1.get('/c', (ctx) => {
      ctx.status = 404;
      ctx.body = 'r1 404 /c';
    });
    const r2 = new Router({ prefix: '/a' });
    r2.put('/y', ok('r2 put /a/y'));
    r2.get('/x', ok('r2 get /a/x'));
    const r3 = new Router();
    r3.get('/b/:id', ok('r3 get /b/:id'));
    r3.delete('/a', ok('r3 delete /a'));
    r3.all('/b/all/{*rest}', ok('r3 all /b/all'));
    const list = [r1, r2, r3];
    if (anyPath) {
      const r4 = new Router();
      r4.get('/:lang/help', ok('r4 help'));
      list.push(r4);
    }
    return list;
  }

  async function serve(middleware: Middleware): Promise<{ url: string; close: () => Promise<void> }> {
    const app = new Koa();
    app.use(middleware);
    app.use((ctx) => {
      ctx.status = 404;
      ctx.body = 'fell through';
    });
    const server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  for (const anyPath of [false, true]) {
    test(`the same answers, 405s and router middleware as every router composed (a pattern router: ${anyPath})`, async () => {
      const table = new RouteTable(routers(anyPath));
      const all = routers(anyPath);
      const everyRouter = compose(all.flatMap((router) => [router.routes(), router.allowedMethods()]) as Middleware[]);
      const oldTable = new RouteTable(all);
      const before = await serve((ctx, next) => (oldTable.mayServe(ctx.path) ? everyRouter(ctx, next) : next()));
      const after = await serve(table.middleware());
      try {
        const paths = ['/', '/a', '/A', '/a/', '/a/x', '/a/y', '/a/z', '/b/1', '/b/all/x/y', '/c', '/d', '/en/help', '/a/help'];
        const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND'];
        const answer = async (url: string, method: string) => {
          const response = await fetch(url, { method });
          return { status: response.status, allow: response.headers.get('allow'), r1: response.headers.get('x-r1'), body: await response.text() };
        };
        for (const path of paths) {
          for (const method of methods) {
            const [was, is] = [await answer(before.url + path, method), await answer(after.url + path, method)];
            expect({ path, method, ...is }).toEqual({ path, method, ...was });
          }
        }
      } finally {
        await Promise.all([before.close(), after.close()]);
      }
    });
  }
});
