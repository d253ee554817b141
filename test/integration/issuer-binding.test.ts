import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { bindIssuer, IssuerMismatchError } from '../../src/db/issuer-binding.ts';
import { createTestDatabase } from '../support/database.ts';
import { freePort, processDatabase, spawnServer, type ProcessDatabase, type ServerProcess } from '../support/processes.ts';

/**
 * Guards issue 12 point 7: a database serves one issuer. A node started with another one used to
 * rewrite the account home's registered redirect URI, and /account then failed on every other node.
 * Now it refuses to start with one line, unless the move is asked for by naming the old issuer.
 * The real server process, as an operator starts it.
 */
let database: ProcessDatabase;
let portA: number;
let portB: number;
const origin = (port: number) => `http://127.0.0.1:${port}`;
const running: ServerProcess[] = [];

beforeAll(async () => {
  database = await processDatabase();
  portA = await freePort();
  portB = await freePort();
});
afterAll(async () => {
  for (const server of running) await server.stop();
  await database.drop();
}, 30_000);

async function spawnNode(port: number, env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await spawnServer({ port, env: { ...database.env, ...env } });
  running.push(server);
  return server;
}

async function startNode(port: number, env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await spawnNode(port, env);
  await server.untilReady();
  return server;
}

/** Starts a node that must refuse: its exit code and its stderr lines. */
async function refusedNode(port: number, env: Record<string, string> = {}) {
  const server = await spawnNode(port, env);
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    server.exited.then((exit) => exit.code),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve('still running'), 45_000);
    }),
  ]);
  clearTimeout(timer);
  await server.stop();
  return {
    code,
    lines: server
      .stderr()
      .split('\n')
      .filter((line) => line.trim() !== ''),
  };
}

/**
 * The account home's sign-in on this node reaches the provider's first sign-in step, which it does
 * only while the account client's registered redirect URI is this node's (else: invalid_redirect_uri).
 */
async function expectAccountHomeSignsIn(port: number): Promise<void> {
  const login = await fetch(`${origin(port)}/account/login`, { redirect: 'manual' });
  expect(login.status).toBe(302);
  const authorize = new URL(login.headers.get('location')!);
  expect(`${authorize.origin}${authorize.pathname}`).toBe(`${origin(port)}/auth`);
  expect(authorize.searchParams.get('redirect_uri')).toBe(`${origin(port)}/account/callback`);
  const answer = await fetch(authorize, { redirect: 'manual' });
  // The sign-in's first page, drawn in the authorization's answer.
  expect(answer.status).toBe(200);
  expect(await answer.text()).toMatch(/action="\/interaction\/[A-Za-z0-9_-]+\/identifier"/);
}

describe('one issuer per database', () => {
  test('the first node records its issuer; a node with another issuer refuses with one line and changes nothing', async () => {
    const a = await startNode(portA);
    await expectAccountHomeSignsIn(portA);
    await a.stop();

    const refused = await refusedNode(portB);
    expect(refused.code).toBe(1);
    expect(refused.lines).toEqual([
      `akamon: could not start: this database serves the issuer ${origin(portA)}, not ${origin(portB)} (AKAMON_ISSUER); to move it to ${origin(portB)}, start one node with AKAMON_MIGRATE_ISSUER_FROM=${origin(portA)}`,
    ]);

    // The refused node wrote nothing: the first issuer's account home still signs in.
    const again = await startNode(portA);
    await expectAccountHomeSignsIn(portA);
    await again.stop();
  }, 120_000);

  test('AKAMON_MIGRATE_ISSUER_FROM naming the old issuer moves the database; the account home follows', async () => {
    const b = await startNode(portB, { AKAMON_MIGRATE_ISSUER_FROM: `${origin(portA)}/` });
    await expectAccountHomeSignsIn(portB);
    expect(b.output()).toContain('issuer migrated');
    await b.stop();

    // A setting left in place never moves it again: the old issuer is now the foreign one.
    const back = await refusedNode(portA, { AKAMON_MIGRATE_ISSUER_FROM: origin(portA) });
    expect(back.code).toBe(1);
    expect(back.lines).toEqual([`akamon: could not start: AKAMON_MIGRATE_ISSUER_FROM is ${origin(portA)}, but this database serves the issuer ${origin(portB)}; nothing was changed`]);

    // The moved database keeps serving its new issuer, and says the setting can go.
    const b2 = await startNode(portB, { AKAMON_MIGRATE_ISSUER_FROM: origin(portA), AKAMON_LOG_LEVEL: 'warn' });
    await expectAccountHomeSignsIn(portB);
    expect(b2.output()).toContain('there was nothing to migrate');
    await b2.stop();
  }, 120_000);
});

describe('nodes starting at the same time', () => {
  test('of 20 first starts with different issuers exactly one is recorded; of 20 migrations exactly one moves it', async () => {
    const { database: test } = await createTestDatabase();
    try {
      const issuers = Array.from({ length: 20 }, (_, i) => `https://node${i}.example.ac.jp`);
      const starts = await Promise.allSettled(issuers.map((issuer) => bindIssuer(test.db, issuer)));
      const recorded = starts.flatMap((s, i) => (s.status === 'fulfilled' ? [issuers[i]] : []));
      expect(recorded).toHaveLength(1);
      expect(starts.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason)).toEqual(Array(19).fill(expect.any(IssuerMismatchError)));
      const stored = await test.db.selectFrom('installation').select('issuer').execute();
      expect(stored).toEqual([{ issuer: recorded[0] }]);

      const moves = await Promise.all(Array.from({ length: 20 }, () => bindIssuer(test.db, 'https://login.example.ac.jp', recorded[0])));
      expect(moves.filter((m) => m.kind === 'migrated')).toEqual([{ kind: 'migrated', from: recorded[0] }]);
      expect(moves.filter((m) => m.kind === 'unchanged')).toHaveLength(19);
      expect(await test.db.selectFrom('installation').select('issuer').execute()).toEqual([{ issuer: 'https://login.example.ac.jp' }]);
    } finally {
      await test.close();
    }
  });
});
