import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { newCommonId, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { enterCredentials, startAuthorization } from '../support/flows.ts';
import { shapeOf, type HashWork } from '../../src/password/password-hasher.ts';

/**
 * Guards issue 13 point 5: unknown accounts used to be checked against a dummy hash made with the
 * current argon2 settings and real ones with their stored settings, so after the settings were
 * raised a refusal took visibly longer for accounts that do not exist. Without timing anything:
 * with the settings changed between the accounts' creation and the sign-in (a second node with
 * new AKAMON_ARGON2_* on the same database, as in a rolling upgrade), the hash work of refusing an
 * unknown account and a real one is the same in count and parameters, and a successful sign-in
 * re-hashes with the new settings.
 */
let before: RunningAkamon;
let after: RunningAkamon;

const OLD = '$argon2id$v=19$m=1024,t=1,p=1';
const NEW = '$argon2id$v=19$m=2048,t=2,p=1';

beforeAll(async () => {
  before = await startAkamon();
  after = await startAkamon({ share: before, env: { AKAMON_ISSUER: before.url, AKAMON_ARGON2_MEMORY_KIB: '2048', AKAMON_ARGON2_ITERATIONS: '2' } });
});
afterAll(async () => {
  await after.close();
  await before.close();
});

/** The hash work one call does on the node with the new settings. */
async function workOf(call: () => Promise<unknown>): Promise<HashWork[]> {
  const work: HashWork[] = [];
  const stop = after.deps.hasher.observe((w) => work.push(w));
  try {
    await call();
  } finally {
    stop();
  }
  return work;
}

const attempt = (commonId: string, password: string) => after.deps.passwordSignin.signIn({ commonId, password, ip: `10.13.5.${Math.floor(Math.random() * 250)}`, userAgent: null, clientId: null });

test('refusing an unknown account costs what refusing a real one does, before and after the re-hash', async () => {
  const accounts = [await before.createReadyAccount(), await before.createReadyAccount()];
  for (const account of accounts) expect(shapeOf((await before.deps.accounts.findById(account.id))!.password_hash)).toBe(OLD);
  expect(after.deps.hasher.currentShape).toBe(NEW);
  // Start-up: the stored shapes are counted and their dummy hashes made before any request.
  await after.deps.passwordSignin.warmUp();

  const unknown = [newCommonId(), newCommonId(), newCommonId()];
  for (const commonId of unknown) {
    expect(await workOf(() => attempt(commonId, 'Wrong-Guess-2027'))).toEqual([{ operation: 'verify', shape: OLD }]);
    expect(await workOf(() => attempt(commonId, ''))).toEqual([{ operation: 'verify', shape: OLD }]);
  }
  for (const account of accounts) {
    expect(await workOf(() => attempt(account.commonId, 'Wrong-Guess-2027'))).toEqual([{ operation: 'verify', shape: OLD }]);
    expect(await workOf(() => attempt(account.commonId, ''))).toEqual([{ operation: 'verify', shape: OLD }]);
  }
  expect((await attempt(unknown[0], 'Wrong-Guess-2027')).ok).toBe(false);

  // A successful sign-in re-hashes with the new settings.
  for (const account of accounts) {
    const signedIn = await workOf(async () => expect((await attempt(account.commonId, account.password)).ok).toBe(true));
    expect(signedIn).toEqual([
      { operation: 'verify', shape: OLD },
      { operation: 'hash', shape: NEW },
    ]);
    expect(shapeOf((await after.deps.accounts.findById(account.id))!.password_hash)).toBe(NEW);
  }

  // Every stored hash is new now: once recounted, unknown accounts cost the new shape too.
  await after.deps.passwordSignin.warmUp();
  for (const commonId of unknown) expect(await workOf(() => attempt(commonId, 'Wrong-Guess-2027'))).toEqual([{ operation: 'verify', shape: NEW }]);
  expect(await workOf(() => attempt(accounts[0].commonId, 'Wrong-Guess-2027'))).toEqual([{ operation: 'verify', shape: NEW }]);
});

test('through the sign-in page: the same work for an unknown and a real Common ID, and the same page', async () => {
  // Every stored hash has the new settings by now (the test above re-hashed them): so has this one.
  const account = await after.createReadyAccount();
  const client = await after.createClient();
  await after.deps.passwordSignin.warmUp();
  const pages: Array<{ status: number; error: string | undefined; work: HashWork[] }> = [];
  for (const commonId of [account.commonId, newCommonId()]) {
    const browser = new Browser(after.url);
    const started = await startAuthorization(browser, after, client);
    let page = started.page;
    const work = await workOf(async () => {
      page = await enterCredentials(browser, started.page, commonId, 'Wrong-Guess-2027');
    });
    pages.push({ status: page.status, error: /id="password-error">\s*<p>([^<]+)/.exec(page.html)?.[1], work });
  }
  expect(pages[0]).toMatchObject({ status: 401, error: 'The Common ID or password is incorrect. Check both and try again.', work: [{ operation: 'verify', shape: NEW }] });
  expect(pages[1]).toEqual(pages[0]);
});
