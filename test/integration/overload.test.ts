import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, type Page } from '../support/browser.ts';
import { startAuthorization } from '../support/flows.ts';

// One hash at a time, no queue, and a deliberately slow hash (64 MiB, 3 passes): a burst of
// password submissions must be turned away with 503 rather than pile up or fail with 500.
let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;
let account: { commonId: string; password: string };
// One person per submission: the burst is many people at once, not one account guessed in parallel.
let people: Array<{ commonId: string; password: string }>;

beforeAll(async () => {
  akamon = await startAkamon({
    env: { AKAMON_HASH_CONCURRENCY: '1', AKAMON_HASH_QUEUE: '0', AKAMON_ARGON2_MEMORY_KIB: '65536', AKAMON_ARGON2_ITERATIONS: '3' },
  });
  client = await akamon.createClient({ name: 'Busy RP' });
  people = [];
  for (let i = 0; i < 8; i += 1) people.push(await akamon.createReadyAccount());
  account = people[0];
});
afterAll(() => akamon.close());

/** A browser of its own, already on the password page of its own interaction. */
async function atPasswordPage(person = account): Promise<{ browser: Browser; page: Page; person: typeof account }> {
  const browser = new Browser(akamon.url);
  const { page: first } = await startAuthorization(browser, akamon, client);
  const page = await browser.submit(first, /\/identifier$/, { identifier: person.commonId });
  expect(page.status).toBe(200);
  expect(page.html).toMatch(/name="password"/);
  return { browser, page, person };
}

describe('overload', () => {
  test('the configuration took effect', () => {
    expect(akamon.config.hashConcurrency).toBe(1);
    expect(akamon.config.hashQueueLimit).toBe(0);
    expect(akamon.config.argon2).toMatchObject({ memoryCost: 65536, timeCost: 3 });
  });

  test('a burst of password submissions gets 503 busy pages, never 500, while discovery and JWKS still answer', async () => {
    const ready = await Promise.all(people.map((person) => atPasswordPage(person)));
    const uids = new Set(ready.map(({ page }) => new URL(page.url).pathname));
    expect(uids.size).toBe(8);

    const started = Date.now();
    let burstOver = false;
    const submissions = Promise.all(ready.map(({ browser, page, person }) => browser.submit(page, /\/password$/, { password: person.password })));

    // While the hash runs, the cheap endpoints keep answering.
    const probes: Array<{ path: string; status: number; ms: number; duringBurst: boolean }> = [];
    const probing = (async () => {
      for (let round = 0; round < 3; round += 1) {
        for (const path of ['/.well-known/openid-configuration', '/jwks']) {
          const t0 = Date.now();
          const response = await fetch(`${akamon.url}${path}`);
          const body = (await response.json()) as Record<string, unknown>;
          probes.push({ path, status: response.status, ms: Date.now() - t0, duringBurst: !burstOver });
          if (path === '/jwks') expect(Array.isArray(body.keys)).toBe(true);
          else expect(body.issuer).toBe(akamon.url);
        }
      }
    })();

    const results = await submissions;
    burstOver = true;
    await probing;
    const elapsed = Date.now() - started;

    const statuses = results.map((r) => r.status);
    expect(statuses).not.toContain(500);
    const busy = results.filter((r) => r.status === 503);
    expect(busy.length).toBeGreaterThanOrEqual(1);
    for (const page of busy) {
      expect(Number(page.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(page.html).toContain('Akamon is busy');
      expect(page.html).not.toMatch(/name="password"/);
    }
    // The rest got through: the one that held the hashing slot reached the relying party.
    const signedIn = results.filter((r) => r.url.startsWith(client.redirectUri));
    expect(signedIn.length).toBeGreaterThanOrEqual(1);
    expect(signedIn.length + busy.length).toBe(results.length);

    expect(probes).toHaveLength(6);
    for (const probe of probes) expect(probe.status).toBe(200);
    expect(probes.some((p) => p.duringBurst)).toBe(true);
    expect(elapsed).toBeLessThan(10_000);

    // Turned-away attempts are not counted as failures: the account is not locked afterwards.
    const again = await atPasswordPage();
    const retry = await again.browser.submit(again.page, /\/password$/, { password: account.password });
    expect(retry.url.startsWith(client.redirectUri)).toBe(true);

    expect(akamon.logs.join('')).not.toMatch(/"level":50[^\n]*request failed/);
    // The sign-in log keeps the turned-away attempts too.
    const shed = await akamon.deps.database.db.selectFrom('signin_event').select('reason').where('reason', '=', 'overloaded').execute();
    expect(shed).toHaveLength(busy.length);
  });
});
