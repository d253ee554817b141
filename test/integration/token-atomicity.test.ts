import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { pastRetryGrace, redeem, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';

// Guards issue 12 point 4: consuming a code or refresh token and writing what replaces it happen in
// one transaction. A database fault in between leaves the old one usable by the client's retry
// (before, the retry was taken for a replay and the grant revoked: a sign-out by a fault), and a
// genuine replay is still caught.

let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;
let account: Awaited<ReturnType<RunningAkamon['createReadyAccount']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  client = await akamon.createClient({ name: 'Atomic RP', redirectUris: ['http://127.0.0.1:9/cb'], firstParty: true, grantTypes: ['authorization_code', 'refresh_token'] } as never);
  account = await akamon.createReadyAccount();
  // The database fails the next write of one model's row, once, the way a backend killed
  // mid-request fails it (a sequence, because the failed transaction rolls back everything else).
  await sql
    .raw(`
    create table if not exists fault_target (model text primary key, fire_at bigint not null);
    create sequence if not exists fault_count;
    create or replace function inject_fault() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from fault_target where model = new.model and fire_at = nextval('fault_count')) then
        raise exception 'injected fault' using errcode = '57P01';
      end if;
      return new;
    end $$;
    drop trigger if exists inject_fault on oidc_payload;
    create trigger inject_fault before insert on oidc_payload for each row execute function inject_fault();
  `)
    .execute(akamon.deps.database.db);
});
afterAll(async () => {
  await akamon?.close();
});

/** The next insert fails with "terminating connection due to administrator command" when its row is of one of `models`. */
async function failNextInsertOf(...models: string[]) {
  const db = akamon.deps.database.db;
  await sql`delete from fault_target`.execute(db);
  const { rows } = await sql<{ n: string }>`select nextval('fault_count') as n`.execute(db);
  // Every insert calls nextval once: the next one gets n + 1.
  for (const model of models) await sql`insert into fault_target values (${model}, ${Number(rows[0].n) + 1})`.execute(db);
}

const consumedAt = async (model: string, id: string) => {
  const row = await akamon.deps.database.db.selectFrom('oidc_payload').select('consumed_at').where('model', '=', model).where('id', '=', id).executeTakeFirst();
  return row?.consumed_at ?? null;
};

async function freshTokens() {
  const browser = new Browser(akamon.url);
  const { code, verifier } = await signIn(browser, akamon, client, account, { scope: 'openid' });
  const tokens = await redeem(akamon, client, code!, verifier);
  expect(tokens.status).toBe(200);
  return tokens.body as { access_token: string; refresh_token: string };
}

test('a fault while a code is redeemed answers 503; the retry redeems it, and a later replay revokes the grant', async () => {
  const browser = new Browser(akamon.url);
  const { code, verifier } = await signIn(browser, akamon, client, account, { scope: 'openid' });
  await failNextInsertOf('AccessToken');
  const failed = await redeem(akamon, client, code!, verifier);
  expect(failed.status).toBe(503);
  expect(failed.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(failed.body).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
  expect(await consumedAt('AuthorizationCode', code!)).toBeNull();

  const retried = await redeem(akamon, client, code!, verifier);
  expect(retried.status).toBe(200);
  expect(await consumedAt('AuthorizationCode', code!)).not.toBeNull();

  // Past the retry grace, which is for answers lost after the commit (token-retry.test.ts).
  await pastRetryGrace(akamon, code!);
  const replayed = await redeem(akamon, client, code!, verifier);
  expect(replayed.status).toBe(400);
  expect(replayed.body.error).toBe('invalid_grant');
  const userinfo = await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${retried.body.access_token}` } });
  expect(userinfo.status).toBe(401);
});

test('a fault while a refresh token rotates answers 503; the retry rotates it, and a later replay revokes the grant', async () => {
  const { refresh_token: first } = await freshTokens();
  await failNextInsertOf('RefreshToken');
  const failed = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: first });
  expect(failed.status).toBe(503);
  expect(failed.body.error).toBe('temporarily_unavailable');
  expect(await consumedAt('RefreshToken', first)).toBeNull();

  const retried = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: first });
  expect(retried.status).toBe(200);
  const second = retried.body.refresh_token as string;
  expect(second).not.toBe(first);

  await pastRetryGrace(akamon, first);
  const replayed = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: first });
  expect(replayed.body.error).toBe('invalid_grant');
  const afterReplay = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: second });
  expect(afterReplay.body.error).toBe('invalid_grant');
  expect(akamon.logs.some((line) => line.includes('"level":50') && line.includes('injected fault'))).toBe(false);
});

test('a rotation is one write: a fault at its access token leaves the refresh token unused and no successor stored', async () => {
  // The consumption, the new refresh token and the access token go out as one statement (oidc/rotation.ts).
  const { refresh_token: first } = await freshTokens();
  await failNextInsertOf('AccessToken');
  const failed = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: first });
  expect(failed.status).toBe(503);
  expect(await consumedAt('RefreshToken', first)).toBeNull();
  const successors = await akamon.deps.database.db.selectFrom('oidc_payload').select('id').where('replaces', '=', first).execute();
  expect(successors).toEqual([]);
  const retried = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: first });
  expect(retried.status).toBe(200);
  expect(await consumedAt('RefreshToken', first)).not.toBeNull();
  const stored = await akamon.deps.database.db.selectFrom('oidc_payload').select(['model', 'id']).where('replaces', '=', first).orderBy('model').execute();
  expect(stored).toEqual([
    { model: 'AccessToken', id: expect.any(String) },
    { model: 'RefreshToken', id: retried.body.refresh_token },
  ]);
});

test('20 parallel redemptions of one refresh token: exactly one wins, the rest are refused cleanly', async () => {
  const { refresh_token: token } = await freshTokens();
  const results = await Promise.all(Array.from({ length: 20 }, () => tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: token })));
  const statuses = results.map((r) => r.status);
  expect(statuses.filter((s) => s === 200)).toHaveLength(1);
  for (const result of results.filter((r) => r.status !== 200)) {
    expect(result.status).toBe(400);
    expect(result.body.error).toBe('invalid_grant');
  }
});

test('20 parallel redemptions of one code: exactly one wins', async () => {
  const browser = new Browser(akamon.url);
  const { code, verifier } = await signIn(browser, akamon, client, account, { scope: 'openid' });
  const results = await Promise.all(Array.from({ length: 20 }, () => redeem(akamon, client, code!, verifier)));
  expect(results.filter((r) => r.status === 200)).toHaveLength(1);
  for (const result of results.filter((r) => r.status !== 200)) expect(result.body.error).toBe('invalid_grant');
});

/** A sign-in up to its resume: the password's answer (303) not followed. `prompt=login` in a signed-in browser asks for the password alone. */
async function atResume(browser = new Browser(akamon.url), params: Record<string, string> = {}): Promise<{ browser: Browser; resume: string; verifier: string }> {
  const started = await startAuthorization(browser, akamon, client, { scope: 'openid', ...params });
  const passwordPage = /name="identifier"/.test(started.page.html) ? await browser.submit(started.page, /\/identifier$/, { identifier: account.commonId }) : started.page;
  const { url, body } = browser.form(passwordPage, /\/password$/, { password: account.password });
  const posted = await browser.request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  expect(posted.status).toBe(303);
  return { browser, resume: posted.headers.get('location')!, verifier: started.verifier };
}

test('20 parallel resumes of one finished sign-in: exactly one code reaches the relying party', async () => {
  const { browser, resume } = await atResume();
  const results = await Promise.all(Array.from({ length: 20 }, () => browser.request(resume)));
  const codes = results.map((r) => r.headers.get('location') ?? '').filter((location) => location.startsWith(client.redirectUri) && new URL(location).searchParams.has('code'));
  expect(codes).toHaveLength(1);
  expect(results.filter((r) => r.status >= 500)).toEqual([]);
});

test('a fault while the resume saves the sign-in answers 503 without the redirect and stores none of it; the reload finishes the sign-in', async () => {
  const db = akamon.deps.database.db;
  const rows = () => db.selectFrom('oidc_payload').select(['model', 'id']).where('model', 'in', ['Session', 'Grant', 'AuthorizationCode']).where('account_id', '=', account.id).orderBy('id').execute();
  const { browser, resume, verifier } = await atResume();
  const before = await rows();
  // The resume's first insert fails, whichever of its three rows it is: they go out in one statement.
  await failNextInsertOf('Session', 'Grant', 'AuthorizationCode');
  const failed = await browser.request(resume, { headers: { accept: 'text/html' } });
  expect([failed.status, failed.headers.get('retry-after'), failed.headers.get('location'), failed.headers.getSetCookie()]).toEqual([503, expect.stringMatching(/^\d+$/), null, []]);
  expect(await failed.text()).toContain('your sign-in continues where it stopped');
  expect(await rows()).toEqual(before);
  expect(await db.selectFrom('oidc_payload').select('id').where('model', '=', 'Interaction').where('id', '=', new URL(resume, akamon.url).pathname.split('/')[2]!).execute()).toHaveLength(1);
  // The reload: the interaction is still there, and the sign-in finishes with a code that redeems.
  const retried = await browser.request(resume);
  const code = new URL(retried.headers.get('location')!).searchParams.get('code');
  expect((await redeem(akamon, client, code!, verifier)).status).toBe(200);
  expect(await rows()).toHaveLength(before.length + 3);
});

test.each(['Interaction', 'Session'])(
  'a fault before the resume saves (deleting its %s row) answers 503 without the redirect or a cookie; the reload finishes the sign-in and keeps the browser signed in',
  async (model) => {
    const db = akamon.deps.database.db;
    // A lock wait that times out on the delete of one model's row: the transaction is then unusable.
    await sql
      .raw(`
    create table if not exists delete_fault (model text primary key);
    create or replace function inject_delete_fault() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from delete_fault where model = old.model) then raise exception 'injected lock timeout' using errcode = '55P03'; end if;
      return old;
    end $$;
    drop trigger if exists inject_delete_fault on oidc_payload;
    create trigger inject_delete_fault before delete on oidc_payload for each row execute function inject_delete_fault();
  `)
      .execute(db);
    // Signed in already: a sign-in again (prompt=login) replaces the browser's session, whose old row is deleted.
    const browser = new Browser(akamon.url);
    await signIn(browser, akamon, client, account, { scope: 'openid' });
    const { resume, verifier } = await atResume(browser, { prompt: 'login' });
    const errorsBefore = akamon.deps.database.stats().queryErrors.statement;
    await sql`insert into delete_fault values (${model})`.execute(db);
    const failed = await browser.request(resume, { headers: { accept: 'text/html' } });
    await sql`delete from delete_fault`.execute(db);
    expect([failed.status, failed.headers.get('retry-after'), failed.headers.get('location'), failed.headers.getSetCookie()]).toEqual([503, expect.stringMatching(/^\d+$/), null, []]);
    expect(await failed.text()).toContain('your sign-in continues where it stopped');
    // Nothing was sent into the failed transaction after the fault.
    expect(akamon.deps.database.stats().queryErrors.statement).toBe(errorsBefore);
    const retried = await browser.request(resume);
    const code = new URL(retried.headers.get('location')!).searchParams.get('code');
    expect((await redeem(akamon, client, code!, verifier)).status).toBe(200);
    // The browser's session is the one the retry saved: single sign-on goes on.
    const again = await startAuthorization(browser, akamon, client, { scope: 'openid', prompt: 'none' });
    expect(new URL(again.page.url).searchParams.get('code')).toBeTruthy();
  },
);
