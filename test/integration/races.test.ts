import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { generate } from 'otplib';
import { sql } from 'kysely';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, decode, type Page } from '../support/browser.ts';
import { chooseMethod, codeFrom, enterCredentials, redeem, secretOn, startAuthorization } from '../support/flows.ts';
import { mailedCode } from '../support/smtp-sink.ts';
import { solveCaptcha } from '../support/captcha.ts';
import { upstreamIdv } from '../support/idv.ts';
import { SoftwareAuthenticator, webauthnOptions } from '../support/webauthn.ts';
import { MfaStore } from '../../src/mfa/mfa.store.ts';

// Issue 12, point 4: twenty copies of the same request at the same moment (a double click, a
// retry, or someone trying) use a single-use thing once, and a capped thing up to its cap. The
// losers get the page's ordinary answer or a 409, never a 500, and leave nothing behind: no second
// mail, password or audit record. On PGlite the database serialises; on PostgreSQL
// (TEST_DATABASE_URL) the requests really overlap.

const PARALLEL = 20;
const upstream = upstreamIdv();
let akamon: RunningAkamon;
let portal: Awaited<ReturnType<RunningAkamon['createClient']>>;
let vpn: Awaited<ReturnType<RunningAkamon['createClient']>>;
let logLines = 0;

beforeAll(async () => {
  // Behind a (pretend) proxy, so each flow comes from an address of its own.
  akamon = await startAkamon({ envFor: upstream.envFor, env: { AKAMON_TRUST_PROXY: 'true', AKAMON_SALVAGE_DAYS: '30' } });
  portal = await akamon.createClient({ name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
  vpn = await akamon.createClient({ name: 'UTokyo VPN', requireMfa: true, redirectUris: ['http://127.0.0.1:9/vpn'] });
});
afterAll(async () => {
  await akamon.close();
  await upstream.close();
});
beforeEach(() => {
  logLines = akamon.logs.length;
});
// A loser that crashed would show here as a logged error, whatever status it answered.
afterEach(() => expect(akamon.logs.slice(logLines).filter((line) => /"level":(50|60)/.test(line))).toEqual([]));

interface Answer {
  status: number;
  location: string | null;
  retryAfter: string | null;
  html: string;
}

/**
 * Sends the same request PARALLEL times at once (`vary` may change the i-th copy's form), with the
 * browser's cookies as they are now. The answers' cookies are not kept: the browser goes on as the
 * person would after the winner. `hashing`: each copy checks a password, and twenty at once may
 * overflow the hashing queue (HASH_QUEUE_PER_THREAD) on a slow machine: its busy page (503 with
 * Retry-After) is then a clear answer too; any other 5xx never is.
 */
async function race(
  browser: Browser,
  request: string | { url: string; body: URLSearchParams },
  vary?: (body: URLSearchParams, i: number) => void,
  options: { hashing?: boolean } = {},
): Promise<Answer[]> {
  const { url, body } = typeof request === 'string' ? { url: request, body: undefined } : request;
  const target = new URL(url, akamon.url);
  const headers: Record<string, string> = { cookie: browser.cookieHeader(target), 'accept-language': 'en', ...browser.extraHeaders };
  if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
  const answers = await Promise.all(
    Array.from({ length: PARALLEL }, async (_, i) => {
      const copy = body && new URLSearchParams(body);
      if (copy) vary?.(copy, i);
      const response = await fetch(target, { method: body ? 'POST' : 'GET', headers, body: copy, redirect: 'manual' });
      return { status: response.status, location: response.headers.get('location'), retryAfter: response.headers.get('retry-after'), html: await response.text() };
    }),
  );
  const hashingBusy = (a: Answer) => options.hashing === true && a.status === 503 && Number(a.retryAfter) > 0 && a.html.includes('Akamon is busy');
  expect(answers.filter((a) => a.status >= 500 && !hashingBusy(a))).toEqual([]);
  return answers;
}

const statuses = (answers: Answer[]) => answers.map((a) => a.status).sort((a, b) => a - b);
/** The one answer of a race that was a 200 page, as a page the browser can go on from. */
function pageOf(answers: Answer[], path: string): Page {
  const winners = answers.filter((a) => a.status === 200);
  expect(winners).toHaveLength(1);
  return { status: 200, url: `${akamon.url}${path}`, html: winners[0].html, headers: new Headers() };
}
const repeat = <T>(value: T, n: number) => Array.from({ length: n }, () => value);
const db = () => akamon.deps.database.db;

/** A ready account's sign-in up to its password form: the page, the form (with the password filled in), the interaction's uid and the PKCE verifier. */
async function atPasswordForm() {
  const account = await akamon.createReadyAccount();
  const browser = new Browser(akamon.url);
  const started = await startAuthorization(browser, akamon, portal);
  const passwordPage = await browser.submit(started.page, /\/identifier$/, { identifier: account.commonId });
  const form = browser.form(passwordPage, /\/password$/, { password: account.password });
  return { account, browser, passwordPage, form, uid: new URL(form.url).pathname.split('/')[2]!, verifier: started.verifier };
}

/** Sends `form` to `url` with these cookies, as a browser posts it, without following the answer. */
const sendForm = (form: { body: URLSearchParams }, url: string, cookie: string, language = 'en') =>
  fetch(url, { method: 'POST', body: new URLSearchParams(form.body), redirect: 'manual', headers: { cookie, 'accept-language': language, 'content-type': 'application/x-www-form-urlencoded' } });

async function auditCount(accountId: string, action: string): Promise<number> {
  const row = await db()
    .selectFrom('audit_event')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('account_id', '=', accountId)
    .where('action', '=', action)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

const mailsTo = (address: string) => akamon.mails.filter((m) => m.to.includes(address.toLowerCase())).length;

/** A browser signed in to the account home at `path`. */
async function home(account: { commonId: string; password: string }, path: string): Promise<{ browser: Browser; page: Page }> {
  const browser = new Browser(akamon.url);
  const page = await enterCredentials(browser, await browser.visit(`${akamon.url}${path}`), account.commonId, account.password);
  expect(new URL(page.url).pathname).toBe(path);
  return { browser, page };
}

/** A TOTP code of `secret` for the time step `offset` steps from now. */
const totp = (secret: string, offset = 0) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + offset * 30 });

describe('the turn: one request at a time per flow or interaction', () => {
  test('of twenty takers exactly one gets the turn; only its holder gives it back', async () => {
    const store = akamon.deps.interactionState;
    const key = `race:${randomUUID()}`;
    await store.merge(key, { stage: 'one' }, 60);
    const tokens = Array.from({ length: PARALLEL }, () => randomUUID());
    const taken = await Promise.all(tokens.map((token) => store.takeTurn(key, token, 30)));
    const holders = tokens.filter((_, i) => taken[i] !== undefined);
    expect(holders).toHaveLength(1);
    expect(taken.find(Boolean)).toEqual({ stage: 'one' });
    await store.endTurn(key, tokens.find((t) => t !== holders[0])!, { stage: 'stolen' }, 60);
    expect(await store.takeTurn(key, randomUUID(), 30)).toBeUndefined();
    await store.endTurn(key, holders[0], { stage: 'two' }, 60);
    expect(await store.get(key)).toEqual({ stage: 'two' });
  });

  test('of twenty transitions out of the same state exactly one happens', async () => {
    const store = akamon.deps.interactionState;
    const key = `race:${randomUUID()}`;
    await store.merge(key, { result: 'account-1' }, 60);
    const done = await Promise.all(Array.from({ length: PARALLEL }, (_, i) => store.transition(key, { result: 'account-1' }, { result: null, by: i }, 60)));
    expect(done.filter(Boolean)).toHaveLength(1);
    expect(await store.get(key)).toEqual({ result: null, by: done.indexOf(true) });
  });
  test("a request that cannot get its turn in time answers 409 in the person's language and does nothing", async () => {
    const { account, browser, passwordPage, form, uid } = await atPasswordForm();
    // Another request (on a node that went quiet, say) holds the interaction's turn.
    const holder = randomUUID();
    expect(await akamon.deps.interactionState.takeTurn(uid, holder, 30)).toBeDefined();
    const cookie = browser.cookieHeader(new URL(form.url));
    const [en, ja] = await Promise.all([sendForm(form, form.url, cookie, 'en'), sendForm(form, form.url, cookie, 'ja')]);
    expect([en.status, ja.status]).toEqual([409, 409]);
    expect(await en.text()).toContain('This was already done or conflicts with a change made at the same time.');
    expect(await ja.text()).toContain('この操作はすでに行われたか');
    expect(await db().selectFrom('signin_event').select('id').where('account_id', '=', account.id).execute()).toEqual([]);
    // Once the turn is given back, the same form goes through.
    await akamon.deps.interactionState.endTurn(uid, holder, {}, 60);
    expect(codeFrom(await browser.submit(passwordPage, /\/password$/, { password: account.password }))).toBeTruthy();
  });

  test('a form sent to an interaction that is gone answers that it expired and takes no turn: no state is stored for it', async () => {
    const { account, browser, form, uid } = await atPasswordForm();
    const stateRows = (id: string) => db().selectFrom('interaction_state').select('uid').where('uid', '=', id).execute();
    const post = (url: string) => sendForm(form, url, browser.cookieHeader(new URL(url)));
    // An interaction that never was.
    const invented = `${uid.slice(0, -4)}abcd`;
    expect((await post(form.url.replace(uid, invented))).status).toBe(400);
    expect(await stateRows(invented)).toEqual([]);
    // This one, once it has expired (and the sweep took its state).
    await db()
      .updateTable('oidc_payload')
      .set({ expires_at: sql<Date>`now() - interval '1 second'` as never })
      .where('model', '=', 'Interaction')
      .where('id', '=', uid)
      .execute();
    await db().deleteFrom('interaction_state').where('uid', '=', uid).execute();
    const answer = await post(form.url);
    expect(answer.status).toBe(400);
    expect(await answer.text()).toMatch(/expired|期限/);
    expect(await stateRows(uid)).toEqual([]);
    expect(await db().selectFrom('signin_event').select('id').where('account_id', '=', account.id).execute()).toEqual([]);
  });

  test("a form for someone else's interaction (its uid, but not its cookie) is refused at once and takes no turn", async () => {
    const { account, browser, passwordPage, form, uid } = await atPasswordForm();
    // A valid CSRF pair and the uid, but not the interaction's cookie (as another browser would send).
    const strangerCookies = browser
      .cookieHeader(new URL(form.url))
      .split('; ')
      .filter((cookie) => !/interaction/.test(cookie))
      .join('; ');
    // The owner's turn is held (say, by its first submit): a request that took turns would wait for it and answer 409.
    const holder = randomUUID();
    expect(await akamon.deps.interactionState.takeTurn(uid, holder, 30)).toBeDefined();
    const sentAt = Date.now();
    expect((await sendForm(form, form.url, strangerCookies)).status).toBe(400);
    expect(Date.now() - sentAt).toBeLessThan(2000);
    await akamon.deps.interactionState.endTurn(uid, holder, {}, 60);
    // The owner's own form still goes through.
    expect(codeFrom(await browser.submit(passwordPage, /\/password$/, { password: account.password }))).toBeTruthy();
  });
});

describe('sign-in steps', () => {
  test('the password sent twenty times signs in once; every copy goes where the first went', async () => {
    const { account, browser, form, verifier } = await atPasswordForm();
    const answers = await race(browser, form);
    expect(statuses(answers)).toEqual(repeat(303, PARALLEL));
    expect(new Set(answers.map((a) => a.location)).size).toBe(1);
    const successes = await db().selectFrom('signin_event').select('reason').where('account_id', '=', account.id).where('result', '=', 'success').execute();
    expect(successes).toHaveLength(1);
    const done = await browser.visit(answers[0].location!);
    expect((await redeem(akamon, portal, codeFrom(done), verifier)).status).toBe(200);
  });

  test('the initial password changed twenty times at once is changed once', async () => {
    const account = await akamon.createAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, portal);
    const change = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(change.html).toContain('Choose a new password');
    const next = 'Raced-Password-2031';
    const answers = await race(browser, browser.form(change, /\/change$/, { current: account.password, new: next, confirm: next }));
    expect(statuses(answers)).toEqual(repeat(303, PARALLEL));
    expect(new Set(answers.map((a) => a.location)).size).toBe(1);
    expect(await auditCount(account.id, 'password.changed')).toBe(1);
    expect((await akamon.deps.passwordSignin.signIn({ commonId: account.commonId, password: next, ip: '10.12.0.1', userAgent: null, clientId: null })).ok).toBe(true);
    expect(codeFrom(await browser.visit(answers[0].location!))).toBeTruthy();
  });

  test('a TOTP code sent twenty times to the MFA step is checked once', async () => {
    const account = await akamon.createReadyAccount();
    const { secret, sealed } = akamon.deps.mfa.pendingTotp();
    expect((await akamon.deps.mfa.confirmTotp(account.id, sealed, await totp(secret, -1), 'App')).ok).toBe(true);
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    const verify = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(verify.html).toContain('Verify your identity');
    const answers = await race(browser, browser.form(verify, /\/totp$/, { code: await totp(secret) }));
    expect(statuses(answers)).toEqual(repeat(303, PARALLEL));
    expect(new Set(answers.map((a) => a.location)).size).toBe(1);
    // The copies never reached the check: no replay was counted against the method.
    expect(await db().selectFrom('throttle').selectAll().where('key', '=', `mfa:totp:${account.id}`).executeTakeFirst()).toBeUndefined();
    const tokens = await redeem(akamon, vpn, codeFrom(await browser.visit(answers[0].location!)), started.verifier);
    expect(JSON.parse(Buffer.from(tokens.body.id_token.split('.')[1], 'base64url').toString()).amr).toEqual(['pwd', 'otp']);
  });
});

describe('second factors and codes', () => {
  test('one TOTP time step is accepted once, also by twenty checks at the same moment', async () => {
    const account = await akamon.createReadyAccount();
    const { secret, sealed } = akamon.deps.mfa.pendingTotp();
    expect((await akamon.deps.mfa.confirmTotp(account.id, sealed, await totp(secret, -1), 'App')).ok).toBe(true);
    const code = await totp(secret);
    const outcomes = await Promise.all(Array.from({ length: PARALLEL }, () => akamon.deps.mfa.verifyTotp(account.id, code)));
    expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
    expect(outcomes.filter((o) => !o.ok && o.reason !== 'replayed' && o.reason !== 'locked')).toEqual([]);
    const steps = await db().selectFrom('totp_step').select('step').where('account_id', '=', account.id).execute();
    expect(steps).toHaveLength(2); // the enrolment's and this one
  });

  test('twenty wrong codes at once: exactly the method cap (five) is checked, the rest wait', async () => {
    const account = await akamon.createReadyAccount();
    const { secret, sealed } = akamon.deps.mfa.pendingTotp();
    expect((await akamon.deps.mfa.confirmTotp(account.id, sealed, await totp(secret, -1), 'App')).ok).toBe(true);
    const valid = new Set(await Promise.all([-1, 0, 1].map((offset) => totp(secret, offset))));
    const wrong = ['000000', '111111', '222222', '333333'].find((c) => !valid.has(c))!;
    const outcomes = await Promise.all(Array.from({ length: PARALLEL }, () => akamon.deps.mfa.verifyTotp(account.id, wrong)));
    const reasons = outcomes.map((o) => (o.ok ? 'ok' : o.reason));
    expect(reasons.filter((r) => r === 'wrong_code')).toHaveLength(5);
    expect(reasons.filter((r) => r === 'locked')).toHaveLength(PARALLEL - 5);
    const row = await db().selectFrom('throttle').selectAll().where('key', '=', `mfa:totp:${account.id}`).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ failures: 5, pending: 0 });
  });

  test('a mailed code is consumed once by twenty checks at the same moment', async () => {
    const account = await akamon.createReadyAccount();
    const email = `code-${account.commonId}@example.com`;
    const purpose = `race:${randomUUID()}`;
    expect(await akamon.deps.recoveryEmail.sendCode(account.id, purpose, email, (code) => ({ subject: 'Code', text: `Your code: ${code}` }))).toEqual({ ok: true });
    const code = mailedCode(akamon.mails, email);
    const results = await Promise.all(Array.from({ length: PARALLEL }, () => akamon.deps.recoveryEmail.checkCode(account.id, purpose, code)));
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    // The account's limit on mailed codes lets as many checks run at once as it has free failures
    // left; the others are refused unchecked (locked), never let through.
    expect(results.filter((r) => r !== 'ok' && r !== 'expired_or_used' && !(typeof r === 'object' && 'locked' in r))).toEqual([]);
  });

  test('twenty codes issued at once for one purpose leave one live code', async () => {
    const account = await akamon.createReadyAccount();
    const purpose = `race:${randomUUID()}`;
    await Promise.all(Array.from({ length: PARALLEL }, (_, i) => akamon.deps.otpCodes.issue(account.id, purpose, `digest-${i}`)));
    const live = await db().selectFrom('otp_code').select('id').where('account_id', '=', account.id).where('purpose', '=', purpose).execute();
    expect(live).toHaveLength(1);
  });

  test('twenty sends at once mail exactly the send cap (three), and only one code stays live', async () => {
    const account = await akamon.createReadyAccount();
    const { browser, page } = await home(account, '/account/security');
    const email = `many-${account.commonId}@example.com`;
    const answers = await race(browser, browser.form(page, /\/account\/security\/email$/, { email }));
    expect(statuses(answers)).toEqual([...repeat(200, 3), ...repeat(429, PARALLEL - 3)]);
    expect(mailsTo(email)).toBe(3);
    const live = await db().selectFrom('otp_code').select('id').where('account_id', '=', account.id).where('consumed_at', 'is', null).execute();
    expect(live).toHaveLength(1);
  });

  test('a new recovery email confirmed twenty times at once is changed once, and the old address hears of it once', async () => {
    const account = await akamon.createReadyAccount();
    const previous = `old-${account.commonId}@example.com`;
    await akamon.deps.accounts.setRecoveryEmail(account.id, previous);
    const { browser, page } = await home(account, '/account/security');
    const email = `new-${account.commonId}@example.com`;
    const pending = await browser.submit(page, /\/account\/security\/email$/, { email });
    const answers = await race(browser, browser.form(pending, /\/account\/security\/email\/confirm$/, { code: mailedCode(akamon.mails, email) }));
    // One is changed; the others find the code used, or are told to wait by the account's limit on
    // mailed codes (as many run at once as it has free failures left).
    expect(statuses(answers).filter((status) => status === 200)).toHaveLength(1);
    expect(statuses(answers).filter((status) => status !== 200 && status !== 400 && status !== 429)).toEqual([]);
    expect(answers.find((a) => a.status === 200)!.html).toContain('Your recovery email was changed.');
    expect(answers.filter((a) => a.status === 400).every((a) => a.html.includes('That code has expired or was already used'))).toBe(true);
    expect(answers.filter((a) => a.status === 429).every((a) => a.html.includes('Too many wrong codes'))).toBe(true);
    expect(await auditCount(account.id, 'recovery_email.changed')).toBe(1);
    expect(mailsTo(previous)).toBe(1);
    expect((await akamon.deps.accounts.findById(account.id))!.recovery_email).toBe(email);
  });
});

describe('enrolment', () => {
  test('an authenticator app confirmed twenty times at once (codes of three time steps) is saved once; so is the recovery email after it', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    const enroll = await chooseMethod(browser, await enterCredentials(browser, started.page, account.commonId, account.password));
    const secret = secretOn(enroll);
    const codes = await Promise.all([-1, 0, 1].map((offset) => totp(secret, offset)));
    const form = browser.form(enroll, /\/totp$/, {});
    const interaction = new URL(form.url).pathname.replace(/\/totp$/, '');
    const answers = await race(browser, form, (body, i) => body.set('code', codes[i % 3]));
    // One copy saves the app; the others find the enrolment done (back to its page, 303) or, run
    // before it with a code of a step gone by, a wrong code.
    expect(answers.filter((a) => a.html.includes('Add a recovery email'))).toHaveLength(1);
    expect(answers.every((a) => a.status === 303 || a.html.includes('Add a recovery email') || a.status === 400)).toBe(true);
    expect((await akamon.deps.mfa.factors(account.id)).map((f) => f.kind)).toEqual(['totp']);
    expect(await auditCount(account.id, 'mfa.enrolled')).toBe(1);

    const email = `enrol-${account.commonId}@example.com`;
    const recoveryPage = await browser.visit(interaction);
    const pending = await browser.submit(recoveryPage, /\/email_send$/, { email });
    const confirms = await race(browser, browser.form(pending, /\/email_confirm$/, { code: mailedCode(akamon.mails, email) }));
    // Every copy shows the next step (the address is on record), but one confirmed it.
    expect(confirms.filter((a) => a.status === 200 && a.html.includes('App password (optional)'))).toHaveLength(PARALLEL);
    expect(await auditCount(account.id, 'recovery_email.confirmed')).toBe(1);
    const finish = await browser.submit(await browser.visit(interaction), /\/app_password_skip$/, {});
    expect((await redeem(akamon, vpn, codeFrom(await browser.submit(finish, /\/finish$/, {})), started.verifier)).status).toBe(200);
  });
});

describe('password reset', () => {
  // One account with a security key (registered by twenty copies of one answer) and a recovery
  // address goes through one reset, with the captcha, the key and the final step each raced.
  let account: { id: string; commonId: string; password: string };
  let authenticator: SoftwareAuthenticator;
  let browser: Browser;
  let current: Page;
  const email = () => `reset-${account.commonId}@example.com`;

  beforeAll(async () => {
    authenticator = new SoftwareAuthenticator(akamon.url);
    account = await akamon.createReadyAccount();
    await akamon.deps.accounts.setRecoveryEmail(account.id, email());
    browser = new Browser(akamon.url);
    browser.extraHeaders = { 'x-forwarded-for': '10.12.1.1' };
  });

  test('a security-key answer posted twenty times at enrolment registers one factor', async () => {
    const signIn = new Browser(akamon.url);
    const started = await startAuthorization(signIn, akamon, vpn);
    const enroll = await chooseMethod(signIn, await enterCredentials(signIn, started.page, account.commonId, account.password), 'key');
    const options = webauthnOptions<{ challenge: string; rp: { id: string } }>(enroll.html);
    const answers = await race(signIn, signIn.form(enroll, /\/webauthn$/, { credential: authenticator.register(options) }));
    // One registers; the others find the enrolment done and go back to its page.
    expect(statuses(answers)).toEqual([...repeat(200, 1), ...repeat(303, PARALLEL - 1)]);
    const factors = await akamon.deps.mfa.factors(account.id);
    expect(factors.map((f) => [f.kind, f.credential_id])).toEqual([['webauthn', authenticator.credentialId]]);
    expect(await auditCount(account.id, 'mfa.enrolled')).toBe(1);
  });

  test('the captcha solved once and posted twenty times starts one reset: one code mailed', async () => {
    // The new key's notice (src/notice/) went to this address as well, in the background: count from after it.
    await akamon.deps.notices.settled();
    const mailsBefore = mailsTo(email());
    const first = await browser.visit('/recover');
    const answers = await race(browser, browser.form(first, /\/recover\/start$/, { identifier: account.commonId, captcha: await solveCaptcha(first) }));
    expect(statuses(answers)).toEqual([...repeat(200, 1), ...repeat(400, PARALLEL - 1)]);
    expect(answers.filter((a) => a.status === 400).every((a) => a.html.includes('Start again'))).toBe(true);
    expect(mailsTo(email()) - mailsBefore).toBe(1);
    current = await browser.submit(pageOf(answers, '/recover/start'), /\/recover\/code$/, { code: mailedCode(akamon.mails, email()) });
    expect(current.html).toContain('also needs one of your second factors');
  });

  test('one security-key assertion posted twenty times passes the factor once, though its counter stays 0', async () => {
    const options = webauthnOptions<{ challenge: string; rpId: string }>(current.html);
    const answers = await race(browser, browser.form(current, /\/recover\/factor\/webauthn$/, { credential: authenticator.assert(options) }));
    expect(statuses(answers)).toEqual([...repeat(200, 1), ...repeat(400, PARALLEL - 1)]);
    current = pageOf(answers, '/recover/factor/webauthn');
    expect(current.html).toContain('Choose a new password');
  });

  test('the new password posted twenty times resets it once: one notice mail, one audit record', async () => {
    const next = 'Reset-Once-Password-77';
    const mailsBefore = mailsTo(email());
    const answers = await race(browser, browser.form(current, /\/recover\/password$/, { new: next, confirm: next }));
    expect(statuses(answers)).toEqual([...repeat(200, 1), ...repeat(400, PARALLEL - 1)]);
    expect(pageOf(answers, '/recover/password').html).toContain('Your password was changed');
    expect(answers.filter((a) => a.status === 400).every((a) => a.html.includes('Start again'))).toBe(true);
    expect(mailsTo(email()) - mailsBefore).toBe(1);
    expect(await auditCount(account.id, 'password.reset')).toBe(1);
    expect((await akamon.deps.passwordSignin.signIn({ commonId: account.commonId, password: next, ip: '10.12.1.2', userAgent: null, clientId: null })).ok).toBe(true);
  });
});

describe('identity verification', () => {
  const card = `card-race-${process.pid}-${Date.now() % 100000}`;
  let account: { id: string; commonId: string; password: string };

  /** Through the upstream provider with a card; returns the URL it sends the browser back to (not yet visited). */
  async function upstreamAnswer(atUpstream: Page, withCard = card, name = 'Race Person'): Promise<string> {
    const upstreamUrl = new URL(atUpstream.url);
    const there = new Browser(upstreamUrl.origin);
    const form = await there.visit(atUpstream.url);
    const back = await there.submit(form, /\/card$/, { card: withCard, name });
    expect(new URL(back.url).pathname).toBe('/idv/callback');
    return back.url;
  }

  beforeAll(async () => {
    account = await akamon.createReadyAccount({ name: 'Race Person' });
  });

  test('a finished link taken twenty times at once links once', async () => {
    const { browser, page } = await home(account, '/account/idv');
    const callback = await upstreamAnswer(await browser.submit(page, /\/account\/idv\/link$/, {}));
    const back = await browser.request(callback);
    expect(back.headers.get('location')).toBe('/account/idv/linked');
    const answers = await race(browser, '/account/idv/linked');
    expect(statuses(answers)).toEqual([...repeat(200, 1), ...repeat(400, PARALLEL - 1)]);
    expect(answers.find((a) => a.status === 200)!.html).toContain('Your ID card is now linked to this account.');
    expect(await auditCount(account.id, 'idv.linked')).toBe(1);
  });

  test('the upstream answer is redeemed once, and the verification issues one temporary password', async () => {
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, portal);
    const callback = await upstreamAnswer(await browser.submit(started.page, /\/idv$/, {}));
    const arrivals = await race(browser, callback);
    expect(statuses(arrivals)).toEqual([...repeat(200, 1), ...repeat(400, PARALLEL - 1)]);
    const choice = pageOf(arrivals, '/idv/callback');
    expect(choice.html).toContain('/idv/recover/password');

    const answers = await race(browser, browser.form(choice, /\/idv\/recover\/password$/, {}));
    expect(statuses(answers)).toEqual([...repeat(200, 1), ...repeat(400, PARALLEL - 1)]);
    const temporary = decode(/id="temporary-password"><code>([^<]+)<\/code>/.exec(pageOf(answers, '/idv/recover/password').html)![1]);
    expect(await auditCount(account.id, 'password.reissued')).toBe(1);
    const counted = await db().selectFrom('throttle').select('failures').where('key', '=', `idv:recover:${account.id}`).executeTakeFirstOrThrow();
    expect(counted.failures).toBe(1);
    expect((await akamon.deps.passwordSignin.signIn({ commonId: account.commonId, password: temporary, ip: '10.12.2.1', userAgent: null, clientId: null })).ok).toBe(true);
  });

  test("a closed account's verification lets it into a salvage client once, however often the page is asked for", async () => {
    const salvageClient = await akamon.createClient({ name: 'Data Export', salvage: true, redirectUris: ['http://127.0.0.1:9/export'] });
    const closed = await akamon.createReadyAccount({ name: 'Closed Person' });
    const closedCard = `${card}-closed`;
    const linking = await home(closed, '/account/idv');
    await linking.browser.visit(await upstreamAnswer(await linking.browser.submit(linking.page, /\/account\/idv\/link$/, {}), closedCard, 'Closed Person'));
    await akamon.deps.accountService.setStatus(closed.commonId, 'revoked', 'graduation');

    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, salvageClient);
    const callback = await upstreamAnswer(await browser.submit(started.page, /\/idv$/, {}), closedCard, 'Closed Person');
    const back = await browser.request(callback);
    const interaction = back.headers.get('location')!;
    expect(interaction).toMatch(/^\/interaction\//);
    const answers = await race(browser, interaction);
    // One lets the account in (on to the provider); the others show the sign-in page or come back to it.
    expect(answers.filter((a) => a.location && new URL(a.location, akamon.url).pathname.startsWith('/auth/'))).toHaveLength(1);
    const salvaged = await db().selectFrom('signin_event').select('reason').where('account_id', '=', closed.id).where('reason', 'like', 'salvage%').execute();
    expect(salvaged).toEqual([{ reason: 'salvage' }]);
  });
});

describe('account home', () => {
  test('the password changed twenty times at once with the same current password is changed once', async () => {
    const account = await akamon.createReadyAccount();
    const { browser, page } = await home(account, '/account/security');
    const next = 'Changed-Once-Password-55';
    const answers = await race(browser, browser.form(page, /\/account\/security\/password$/, { current: account.password, new: next, confirm: next }), undefined, { hashing: true });
    // One changes it; the others find the current password current no more (400), find the page's
    // session ended by the change (302 to sign in again), or are told to wait (429, or 503 from a full hashing queue).
    expect(answers.filter((a) => a.status === 303)).toHaveLength(1);
    expect(answers.filter((a) => ![303, 400, 302, 429, 503].includes(a.status))).toEqual([]);
    expect(await auditCount(account.id, 'password.changed')).toBe(1);
    expect((await akamon.deps.passwordSignin.signIn({ commonId: account.commonId, password: next, ip: '10.12.3.1', userAgent: null, clientId: null })).ok).toBe(true);
  });

  test('twenty app passwords created at once make exactly the cap (ten), each with its audit record', async () => {
    const account = await akamon.createReadyAccount();
    const { browser, page } = await home(account, '/account');
    const answers = await race(browser, browser.form(page, /\/account\/app-passwords$/, { name: 'Mail client' }));
    expect(statuses(answers)).toEqual([...repeat(200, 10), ...repeat(400, PARALLEL - 10)]);
    expect(answers.filter((a) => a.status === 400).every((a) => a.html.includes('You already have the most app passwords allowed'))).toBe(true);
    expect(await akamon.deps.appPasswords.list(account.id)).toHaveLength(10);
    expect(await auditCount(account.id, 'app_password.created')).toBe(10);
  });
});

describe('second-factor defaults', () => {
  const defaults = async (accountId: string) => (await new MfaStore(db()).factors(accountId)).filter((f) => f.is_default).length;

  test('twenty first factors added at once: exactly one is the default', async () => {
    const account = await akamon.createReadyAccount();
    const store = new MfaStore(db());
    await Promise.all(repeat(0, PARALLEL).map((_, i) => store.insert({ accountId: account.id, kind: 'totp', label: `App ${i}`, secretEnc: 'x' })));
    expect(await store.factors(account.id)).toHaveLength(PARALLEL);
    expect(await defaults(account.id)).toBe(1);
  });

  test('twenty factors removed at once, the default among them: the one left is the default', async () => {
    const account = await akamon.createReadyAccount();
    const store = new MfaStore(db());
    const factors = [];
    for (let i = 0; i <= PARALLEL; i++) factors.push(await store.insert({ accountId: account.id, kind: 'totp', label: `App ${i}`, secretEnc: 'x' }));
    expect(factors[0].is_default).toBe(true);
    const removed = await Promise.all(factors.slice(0, PARALLEL).map((factor) => store.deleteOne(account.id, factor.id)));
    expect(removed.every(Boolean)).toBe(true);
    const left = await store.factors(account.id);
    expect(left.map((f) => [f.id, f.is_default])).toEqual([[factors[PARALLEL].id, true]]);
  });
});
