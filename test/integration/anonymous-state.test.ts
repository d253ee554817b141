import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { authorizeUrl, Browser, pkce } from '../support/browser.ts';
import { redeem, signIn, startAuthorization } from '../support/flows.ts';
import { shiftableClock } from '../support/clock.ts';
import { upstreamIdv } from '../support/idv.ts';

/**
 * Guards issue 12 point 6: what a caller who has not signed in can make Akamon store (a session
 * from GET /session/end, an interaction from /auth, a password-reset flow with its captcha, an
 * identity-verification flow) is capped per source address, counted in the database across
 * nodes, and short-lived; and all sources together cannot store more than a ceiling. Every
 * anonymous GET /session/end used to store an 8-hour session and nothing bounded how many; then a
 * fixed 10-minute window let one host behind a campus NAT shut the whole campus out for the rest
 * of the window, and many sources together had no bound at all.
 *
 * The cap is set low here (CAP at once, refilled over 10 minutes: one every 75 s). Addresses come
 * from X-Forwarded-For, as behind the TLS proxy (127.0.0.1 is trusted as one); each test uses
 * addresses of its own.
 */
const CAP = 8;
const clock = shiftableClock();
const upstream = upstreamIdv();
let akamon: RunningAkamon;
let second: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  const env = { AKAMON_ANONYMOUS_PER_ADDRESS: String(CAP), AKAMON_TRUST_PROXY: 'true' };
  akamon = await startAkamon({ clock, env, envFor: upstream.envFor });
  second = await startAkamon({ clock, share: akamon, env: { ...env, AKAMON_ISSUER: akamon.url } });
  client = await akamon.createClient({ name: 'LMS' });
});
afterAll(async () => {
  await second.close();
  await akamon.close();
  await upstream.close();
});

const db = () => akamon.deps.database.db;
const from = (address: string) => ({ 'x-forwarded-for': address });

/** Provider rows of a kind, with how long each has left to live. */
async function providerRows(model: string) {
  return db()
    .selectFrom('oidc_payload')
    .select(['id', 'account_id', sql<number>`extract(epoch from expires_at - now())`.as('left')])
    .where('model', '=', model)
    .execute();
}
const flowRows = async (prefix: string) => Number((await db().selectFrom('interaction_state').select(sql<number>`count(*)`.as('n')).where('uid', 'like', `${prefix}:%`).executeTakeFirstOrThrow()).n);

const logout = (node: RunningAkamon, address: string, accept = 'text/html') => fetch(`${node.url}/session/end`, { redirect: 'manual', headers: { ...from(address), accept, 'accept-language': 'en' } });

function authorize(address: string, language = 'en') {
  const { challenge } = pkce();
  return fetch(authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256' }), {
    redirect: 'manual',
    headers: { ...from(address), 'accept-language': language },
  });
}

const statuses = (responses: Response[]) => responses.map((r) => r.status).sort((a, b) => a - b);

describe('a flood from one address', () => {
  test('of logouts without a sign-in: exactly the cap is stored, each for minutes, not 8 hours; the rest get 429', async () => {
    const before = (await providerRows('Session')).length;
    const responses = await Promise.all(Array.from({ length: 20 }, () => logout(akamon, '198.51.100.1')));
    expect(statuses(responses)).toEqual([...Array(CAP).fill(200), ...Array(20 - CAP).fill(429)]);
    const sessions = await providerRows('Session');
    expect(sessions).toHaveLength(before + CAP);
    for (const session of sessions.filter((s) => s.account_id === null)) {
      expect(Number(session.left)).toBeGreaterThan(500);
      expect(Number(session.left)).toBeLessThanOrEqual(600);
    }

    // The budget refills steadily: the next record fits in one refill step (600 s / CAP), not a window.
    const refused = responses.find((r) => r.status === 429)!;
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(70);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(600 / CAP);
    const page = await refused.text();
    expect(page).toContain('Too many requests from your network');
    expect(page).toContain('Wait a few minutes, then try again.');
    expect(page).not.toMatch(/at \w+ \(|node_modules/);
  });

  test('the refusal speaks Japanese to a Japanese browser and RFC 6749 JSON to a program', async () => {
    const japanese = await fetch(`${akamon.url}/session/end`, { headers: { ...from('198.51.100.1'), accept: 'text/html', 'accept-language': 'ja' } });
    expect(japanese.status).toBe(429);
    expect(await japanese.text()).toContain('リクエストが多すぎます');

    const json = await logout(akamon, '198.51.100.1', 'application/json');
    expect(json.status).toBe(429);
    expect(Number(json.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await json.json()).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
  });

  test('of authorization requests: exactly the cap of interactions is stored, the rest get a 429 page', async () => {
    const before = (await providerRows('Interaction')).length;
    const responses = await Promise.all(Array.from({ length: 20 }, () => authorize('198.51.100.2')));
    expect(statuses(responses)).toEqual([...Array(CAP).fill(200), ...Array(20 - CAP).fill(429)]);
    expect((await providerRows('Interaction')).length).toBe(before + CAP);
    const refused = responses.find((r) => r.status === 429)!;
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await refused.text()).toContain('Too many requests from your network');
  });

  test('of password-reset pages (each a flow with a captcha challenge) and identity verifications: the same cap', async () => {
    const browser = new Browser(akamon.url);
    browser.extraHeaders = from('198.51.100.3');
    const before = await flowRows('recover');
    const pages = [];
    for (let i = 0; i < CAP - 2; i += 1) pages.push(await browser.visit('/recover'));
    expect(pages.map((p) => p.status)).toEqual(Array(CAP - 2).fill(200));
    expect(pages[0].html).toContain('id="captcha-challenge"');
    expect(await flowRows('recover')).toBe(before + CAP - 2);

    // Identity verification from the reset page: each start stores a flow, until the cap.
    const idvBefore = await flowRows('idv');
    const first = await browser.submit(pages[0], /\/idv\/start$/, {});
    expect(first.status).toBe(303);
    expect(new URL(first.url).origin).not.toBe(akamon.url);
    const second = await browser.submit(pages[1], /\/idv\/start$/, {});
    expect(second.status).toBe(303);
    expect(await flowRows('idv')).toBe(idvBefore + 2);

    const refusedIdv = await browser.submit(pages[2], /\/idv\/start$/, {});
    expect(refusedIdv.status).toBe(429);
    const refusedReset = await browser.visit('/recover');
    expect(refusedReset.status).toBe(429);
    expect(refusedReset.html).toContain('Too many requests from your network');
    expect(await flowRows('idv')).toBe(idvBefore + 2);
    expect(await flowRows('recover')).toBe(before + CAP - 2);
  });

  test('is one budget per address, kept in the database: a second node refuses the same address', async () => {
    const address = '198.51.100.4';
    for (let i = 0; i < CAP / 2; i += 1) expect((await logout(akamon, address)).status).toBe(200);
    for (let i = 0; i < CAP / 2; i += 1) expect((await authorize(address)).status).toBe(200);
    // As a program: a browser reaching the second node by its own host name is sent to the issuer's.
    expect((await logout(second, address, 'application/json')).status).toBe(429);
    expect((await authorize(address)).status).toBe(429);
  });

  test('of pushed authorization requests: a public client is capped, an authenticated client is not counted', async () => {
    const spa = await akamon.createClient({ name: 'Campus app', public: true });
    const push = (pushed: { clientId: string; clientSecret: string | null; redirectUri: string }) => {
      const { challenge } = pkce();
      const body = new URLSearchParams({
        client_id: pushed.clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: pushed.redirectUri,
        code_challenge: challenge,
        code_challenge_method: 'S256',
      });
      const headers: Record<string, string> = { ...from('198.51.100.8'), 'content-type': 'application/x-www-form-urlencoded' };
      if (pushed.clientSecret) headers.authorization = `Basic ${Buffer.from(`${pushed.clientId}:${pushed.clientSecret}`).toString('base64')}`;
      return fetch(`${akamon.url}/request`, { method: 'POST', headers, body });
    };
    const before = (await providerRows('PushedAuthorizationRequest')).length;
    const responses = await Promise.all(Array.from({ length: 12 }, () => push(spa)));
    expect(statuses(responses)).toEqual([...Array(CAP).fill(201), ...Array(12 - CAP).fill(429)]);
    const refused = responses.find((r) => r.status === 429)!;
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await refused.json()).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
    expect((await providerRows('PushedAuthorizationRequest')).length).toBe(before + CAP);
    // A confidential client authenticated itself: its request is not anonymous, even from this address.
    expect((await push(client)).status).toBe(201);
  });

  test('IPv6 addresses count by their /64: a caller cannot step to a fresh address in its network', async () => {
    for (let i = 1; i <= CAP; i += 1) expect((await logout(akamon, `2001:db8:0:7::${i.toString(16)}`)).status).toBe(200);
    expect((await logout(akamon, '2001:db8:0:7:ffff:1:2:3')).status).toBe(429);
    expect((await logout(akamon, '2001:db8:0:8::1')).status).toBe(200);
  });
});

describe('everyone else', () => {
  test('another address is unaffected while one is capped, and a real sign-in works; its session lives as long as a signed-in one does (the idle timeout), not the anonymous 10 minutes', async () => {
    for (let i = 0; i < CAP; i += 1) await logout(akamon, '198.51.100.5');
    expect((await logout(akamon, '198.51.100.5')).status).toBe(429);

    expect((await logout(akamon, '203.0.113.9')).status).toBe(200);
    const browser = new Browser(akamon.url);
    browser.extraHeaders = from('203.0.113.9');
    const account = await akamon.createReadyAccount();
    const { code, verifier } = await signIn(browser, akamon, client, account);
    const tokens = await redeem(akamon, client, code!, verifier);
    expect(tokens.status).toBe(200);
    const [session] = (await providerRows('Session')).filter((s) => s.account_id === account.id);
    const signedIn = Math.min(akamon.config.ttl.sessionIdle, akamon.config.ttl.session);
    expect(Number(session.left)).toBeGreaterThan(signedIn - 60);
    expect(signedIn).toBeGreaterThan(10 * 60);
  });

  test('a resume refused for the cap (its next step is a new interaction) keeps nothing and changes no cookie: after a refill the reload goes on', async () => {
    const address = '198.51.100.7';
    const vpn = await akamon.createClient({ name: 'VPN (capped address)', requireMfa: true });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    browser.extraHeaders = from(address);
    const started = await startAuthorization(browser, akamon, vpn);
    const uid = new URL(started.page.url).pathname.split('/')[2]!;
    const passwordPage = await browser.submit(started.page, /\/identifier$/, { identifier: account.commonId });
    const { url, body } = browser.form(passwordPage, /\/password$/, { password: account.password });
    const resume = (await browser.request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body })).headers.get('location')!;
    // The address spends the rest of its budget; the resume would store the set-up's interaction.
    for (let i = 0; i <= CAP && (await logout(akamon, address)).status !== 429; i += 1);
    const sessions = async () => (await providerRows('Session')).filter((row) => row.account_id === account.id);
    try {
      const refused = await browser.request(resume, { headers: { accept: 'text/html' } });
      expect([refused.status, refused.headers.get('location'), refused.headers.getSetCookie()]).toEqual([429, null, []]);
      expect(await sessions()).toEqual([]);
      expect((await providerRows('Interaction')).some((row) => row.id === uid)).toBe(true);
      // One refill step later the reload goes on to the set-up, signed in.
      clock.offset = 76_000;
      const next = await browser.visit(resume);
      expect(next.html).toContain('More information required');
      expect(await sessions()).toHaveLength(1);
    } finally {
      clock.offset = 0;
    }
  });

  test('a capped address gets one more record each refill step while it floods, and its whole budget back after a quiet window', async () => {
    for (let i = 0; i < CAP; i += 1) await logout(akamon, '198.51.100.6');
    expect((await logout(akamon, '198.51.100.6')).status).toBe(429);
    try {
      // One step (600 s / CAP) later: one more, whoever behind the address asks first, then refused again.
      clock.offset = 76_000;
      expect((await logout(akamon, '198.51.100.6')).status).toBe(200);
      expect((await logout(akamon, '198.51.100.6')).status).toBe(429);
      // A window later the budget is full again: CAP at once.
      clock.offset = 76_000 + 601_000;
      const statuses = [];
      for (let i = 0; i <= CAP; i += 1) statuses.push((await logout(akamon, '198.51.100.6')).status);
      expect(statuses).toEqual([...Array(CAP).fill(200), 429]);
      // The clock goes back more than a whole window (a correction): the budget starts afresh
      // rather than refusing the address until the clock is where it was.
      clock.offset = 0;
      const afterCorrection = [];
      for (let i = 0; i <= CAP; i += 1) afterCorrection.push((await logout(akamon, '198.51.100.6')).status);
      expect(afterCorrection).toEqual([...Array(CAP).fill(200), 429]);
    } finally {
      clock.offset = 0;
    }
  });
});

describe('all sources together', () => {
  // A node of its own, with a ceiling of 20 stored records: 10 at once, 10 more spread over one
  // lifetime (3660 s: an interaction's hour and a sweep), so never more than 20 made in any span in
  // which the first could still be stored.
  const CEILING = 20;
  const ceilingClock = shiftableClock();
  let node: RunningAkamon;
  beforeAll(async () => {
    node = await startAkamon({ clock: ceilingClock, env: { AKAMON_TRUST_PROXY: 'true', AKAMON_ANONYMOUS_PER_ADDRESS: '3', AKAMON_ANONYMOUS_MAX_STORED: String(CEILING) } });
  });
  afterAll(() => node.close());

  const anonymousSessions = async () =>
    Number((await node.deps.database.db.selectFrom('oidc_payload').select(sql<number>`count(*)`.as('n')).where('model', '=', 'Session').where('account_id', 'is', null).executeTakeFirstOrThrow()).n);

  test('cannot store more than the ceiling, however many addresses they come from: beyond it 503 with Retry-After, in ja and en', async () => {
    // One source over its own cap is refused by its cap, and spends nothing of everyone's budget.
    const one = [];
    for (let i = 0; i < 6; i += 1) one.push((await logout(node, '203.0.113.1')).status);
    expect(one).toEqual([200, 200, 200, 429, 429, 429]);

    // Many sources, one record each, all at once: the rest of the burst (10 - 3) is stored, then 503.
    const many = await Promise.all(Array.from({ length: 30 }, (_, i) => logout(node, `203.0.113.${i + 10}`)));
    expect(statuses(many)).toEqual([...Array(7).fill(200), ...Array(23).fill(503)]);
    expect(await anonymousSessions()).toBe(CEILING / 2);

    const refused = many.find((r) => r.status === 503)!;
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(300);
    expect(retryAfter).toBeLessThanOrEqual(366);
    expect(await refused.text()).toContain('Many people are signing in right now.');
    const japanese = await fetch(`${node.url}/session/end`, { headers: { ...from('203.0.113.99'), accept: 'text/html', 'accept-language': 'ja' } });
    expect(japanese.status).toBe(503);
    expect(await japanese.text()).toContain('ただいま多くの方がサインインしています');
    const json = await logout(node, '203.0.113.98', 'application/json');
    expect(json.status).toBe(503);
    expect(json.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await json.json()).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
    // Every other kind of anonymous record meets the same ceiling: a sign-in begun, a reset page.
    const { challenge } = pkce();
    const auth = await fetch(
      authorizeUrl(node.url, { client_id: (await node.createClient()).clientId, redirect_uri: 'http://127.0.0.1:9/callback', code_challenge: challenge, code_challenge_method: 'S256' }),
      {
        redirect: 'manual',
        headers: { ...from('203.0.113.97'), 'accept-language': 'en' },
      },
    );
    expect(auth.status).toBe(503);
    const reset = await fetch(`${node.url}/recover`, { headers: { ...from('203.0.113.96'), 'accept-language': 'en' } });
    expect(reset.status).toBe(503);
    expect(await anonymousSessions()).toBe(CEILING / 2);
  });

  test('refills steadily: over a whole lifetime at most the ceiling is made', async () => {
    try {
      // One refill step (3660 s / 10) later: one more record, from anyone.
      ceilingClock.offset = 367_000;
      const step = await Promise.all(Array.from({ length: 5 }, (_, i) => logout(node, `198.18.0.${i + 1}`)));
      expect(statuses(step)).toEqual([200, 503, 503, 503, 503]);
      // At the end of the lifetime of the first records, the other 9 steps have refilled: 20 in all.
      ceilingClock.offset = 3_661_000;
      const rest = await Promise.all(Array.from({ length: 20 }, (_, i) => logout(node, `198.18.1.${i + 1}`)));
      expect(statuses(rest).filter((status) => status === 200)).toHaveLength(9);
      expect(await anonymousSessions()).toBe(CEILING);
    } finally {
      ceilingClock.offset = 0;
    }
  });
});

describe('short-lived', () => {
  test('the sweep removes expired anonymous sessions and the counters of full budgets', async () => {
    await logout(akamon, '198.51.100.7');
    const key = 'bucket:anonymous:198.51.100.7';
    expect(await db().selectFrom('throttle').select('key').where('key', '=', key).execute()).toHaveLength(1);
    // As they will be after ten minutes: the session has expired and the budget has refilled.
    await db().updateTable('oidc_payload').set({ expires_at: sql<Date>`now() - interval '1 second'` }).where('model', '=', 'Session').where('account_id', 'is', null).execute();
    await db().updateTable('throttle').set({ locked_until: sql<Date>`now() - interval '1 second'` }).where('key', '=', key).execute();
    await akamon.akamon.sweeper.sweep();
    expect((await providerRows('Session')).filter((s) => s.account_id === null)).toEqual([]);
    expect(await db().selectFrom('throttle').select('key').where('key', '=', key).execute()).toEqual([]);
  });
});

describe('the log', () => {
  test('no refusal was logged as an error: each is a warning that says 429', () => {
    const lines = [...akamon.logs, ...second.logs]
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.filter((line) => Number(line.level) >= 50)).toEqual([]);
    // Every refusal here was for the cap (the log redacts any field named `code`, so the message tells).
    const warnings = lines.filter((line) => /request answered \d+$/.test(String(line.msg)));
    expect(warnings.length).toBeGreaterThan(20);
    for (const warning of warnings) expect(warning).toMatchObject({ level: 40, msg: expect.stringMatching(/answered 429$/) });
    expect(warnings.map((w) => w.path ?? 'page')).toEqual(expect.arrayContaining(['/session/end', '/auth', 'page']));
  });
});
