import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generate } from 'otplib';
import { sql } from 'kysely';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { backchannelReceiver } from '../support/backchannel.ts';
import { chooseMethod, codeFrom, enterCredentials, finishEnrolment, redeem, secretOn, startAuthorization, tokenRequest } from '../support/flows.ts';
import { startReset } from '../support/recovery.ts';
import { mailedCode } from '../support/smtp-sink.ts';
import { parseExposition, seriesValue, type Exposition } from '../support/prometheus-text.ts';
import { routeGroup } from '../../src/metrics/prometheus.ts';
import { startMetricsServer } from '../../src/metrics/metrics-route.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import type { Role } from '../../src/operator/permissions.ts';

/**
 * The Prometheus metrics (issue 19, point 2): each event is performed for real and the exposition,
 * read with a strict text-format parser, must move by exactly what happened. /metrics is never
 * public: a token with metrics.read on the main port, or the separate loopback listener.
 */
let akamon: RunningAkamon;
const tokens: Partial<Record<Role, string>> = {};
/** Every Common ID this file signs in with: none may ever appear in the exposition. */
const commonIds: string[] = [];

beforeAll(async () => {
  // One hash at a time and one waiting, so a burst is shed deterministically (the load-shed test).
  akamon = await startAkamon({ env: { AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'true', AKAMON_HASH_CONCURRENCY: '1', AKAMON_HASH_QUEUE: '1' } });
  for (const role of ['monitoring', 'helpdesk'] as const) {
    tokens[role] = await akamon.deps.operators.create({ name: `metrics-${role}`, role, scope: null, expiresAt: null, createdBy: null });
  }
});
afterAll(() => akamon.close());

const get = (path: string, token?: string) => fetch(`${akamon.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

async function scrape(): Promise<Exposition> {
  const response = await get('/metrics', tokens.monitoring);
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
}

/** The change of each named series between two scrapes around `act`. */
async function deltas(series: Array<[string, Record<string, string>]>, act: () => Promise<unknown>): Promise<number[]> {
  const before = await scrape();
  await act();
  const after = await scrape();
  return series.map(([name, labels]) => seriesValue(after, name, labels) - seriesValue(before, name, labels));
}

const totpAt = (secret: string, offsetSteps = 0) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + offsetSteps * 30 });

async function readyAccount(input: Parameters<RunningAkamon['createReadyAccount']>[0] = {}) {
  const account = await akamon.createReadyAccount(input);
  commonIds.push(account.commonId);
  return account;
}

describe('who may read /metrics', () => {
  test('main port: no token 401 as the admin API, a helpdesk token 403, monitoring and admin tokens 200 in the text format', async () => {
    const anonymous = await get('/metrics');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(await anonymous.json()).toEqual({ error: 'unauthorized', error_description: 'a valid operator token is required' });
    expect((await get('/metrics', 'akop_not-a-real-token-not-a-real-token-not-a-rea')).status).toBe(401);

    const helpdesk = await get('/metrics', tokens.helpdesk);
    expect(helpdesk.status).toBe(403);
    expect(((await helpdesk.json()) as { error: string }).error).toBe('forbidden');

    for (const token of [tokens.monitoring, akamon.operatorToken]) {
      const allowed = await get('/metrics', token);
      expect(allowed.status).toBe(200);
      expect(allowed.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const exposition = parseExposition(await allowed.text());
      // The default Node process metrics come along, in this app's own registry.
      expect(exposition.families.get('process_cpu_seconds_total')?.type).toBe('counter');
      expect(exposition.families.get('akamon_signins_total')?.type).toBe('counter');
      expect(exposition.families.get('akamon_http_request_duration_seconds')?.type).toBe('histogram');
    }
  });

  test('the separate listener answers /metrics without a token and nothing else; the main port still wants one', async () => {
    const server: http.Server = await startMetricsServer(akamon.deps.metrics, 0, '127.0.0.1');
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const open = await fetch(`${base}/metrics`);
      expect(open.status).toBe(200);
      expect(parseExposition(await open.text()).families.has('akamon_token_grants_total')).toBe(true);
      for (const path of ['/healthz', '/admin/api/accounts', '/metrics/../healthz', '/']) expect((await fetch(`${base}${path}`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(404);
      expect((await get('/metrics')).status).toBe(401);
    } finally {
      server.close();
    }
  });

  test('AKAMON_METRICS_PORT and _HOST: loopback by default, never the main port', () => {
    const base = { AKAMON_SECRET: 'x'.repeat(40), PORT: '3000' };
    expect(loadConfig(base).metrics).toBeUndefined();
    expect(loadConfig({ ...base, AKAMON_METRICS_PORT: '9464' }).metrics).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(loadConfig({ ...base, AKAMON_METRICS_PORT: '9464', AKAMON_METRICS_HOST: '10.0.0.7' }).metrics).toEqual({ port: 9464, host: '10.0.0.7' });
    expect(() => loadConfig({ ...base, AKAMON_METRICS_PORT: '3000' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, AKAMON_METRICS_PORT: 'ninety' })).toThrow(/AKAMON_METRICS_PORT must be a whole number/);
  });
});

describe('events counted', () => {
  test('a good and two bad sign-ins: by result and reason code', async () => {
    const client = await akamon.createClient({ name: 'Library', redirectUris: ['http://127.0.0.1:9/library'] });
    const account = await readyAccount();
    const moved = await deltas(
      [
        ['akamon_signins_total', { result: 'success', reason: 'password' }],
        ['akamon_signins_total', { result: 'failure', reason: 'wrong_password' }],
        ['akamon_signins_total', { result: 'failure', reason: 'unknown_account' }],
      ],
      async () => {
        const signInWith = async (commonId: string, password: string) => {
          const browser = new Browser(akamon.url);
          const { page } = await startAuthorization(browser, akamon, client);
          return enterCredentials(browser, page, commonId, password);
        };
        expect(codeFrom(await signInWith(account.commonId, account.password))).toBeTruthy();
        expect((await signInWith(account.commonId, 'Wrong-password-123')).status).toBe(401);
        expect((await signInWith('9999999999', 'Wrong-password-123')).status).toBe(401);
      },
    );
    expect(moved).toEqual([1, 1, 1]);
  });

  test('an access-rule denial: a failed sign-in with the rule as reason, and the denial counter by rule', async () => {
    const lab = await akamon.createClient({ name: 'Lab', allowedAffiliations: ['faculty'], redirectUris: ['http://127.0.0.1:9/lab'] });
    const student = await readyAccount({ affiliation: 'student' });
    const moved = await deltas(
      [
        ['akamon_signins_total', { result: 'failure', reason: 'access_denied.affiliation_not_allowed' }],
        ['akamon_access_denials_total', { rule: 'affiliation_not_allowed' }],
        ['akamon_signins_total', { result: 'success', reason: 'password' }],
      ],
      async () => {
        const browser = new Browser(akamon.url);
        const started = await startAuthorization(browser, akamon, lab);
        expect((await enterCredentials(browser, started.page, student.commonId, student.password)).status).toBe(403);
      },
    );
    // The password was right (one success), then the rule refused (one denial).
    expect(moved).toEqual([1, 1, 1]);
  });

  test('MFA: an enrolment by kind, then a wrong and a right code by method and result', async () => {
    const vpn = await akamon.createClient({ name: 'VPN', requireMfa: true, redirectUris: ['http://127.0.0.1:9/vpn'] });
    const account = await readyAccount();
    let secret = '';
    const enrolled = await deltas(
      [
        ['akamon_mfa_enrolments_total', { kind: 'totp' }],
        ['akamon_mfa_verifications_total', { method: 'totp', result: 'success' }],
      ],
      async () => {
        const browser = new Browser(akamon.url);
        const started = await startAuthorization(browser, akamon, vpn);
        const app = await chooseMethod(browser, await enterCredentials(browser, started.page, account.commonId, account.password));
        secret = secretOn(app);
        expect(codeFrom(await finishEnrolment(browser, akamon, await browser.submit(app, /\/totp$/, { code: await totpAt(secret) })))).toBeTruthy();
      },
    );
    // Setting a factor up is an enrolment, not a verification.
    expect(enrolled).toEqual([1, 0]);

    const verified = await deltas(
      [
        ['akamon_mfa_verifications_total', { method: 'totp', result: 'wrong_code' }],
        ['akamon_mfa_verifications_total', { method: 'totp', result: 'success' }],
        ['akamon_mfa_enrolments_total', { kind: 'totp' }],
      ],
      async () => {
        const browser = new Browser(akamon.url);
        const started = await startAuthorization(browser, akamon, vpn);
        const challenge = await enterCredentials(browser, started.page, account.commonId, account.password);
        const wrong = await browser.submit(challenge, /\/totp$/, { code: '000000' });
        expect(wrong.status).toBe(400);
        expect(codeFrom(await browser.submit(wrong, /\/totp$/, { code: await totpAt(secret, 1) }))).toBeTruthy();
      },
    );
    expect(verified).toEqual([1, 1, 0]);
  });

  test('a password reset by its steps: the code sent, a wrong code, the new password set', async () => {
    const account = await readyAccount();
    const email = `reset-${account.commonId}@example.com`;
    await akamon.deps.accounts.setRecoveryEmail(account.id, email);
    const moved = await deltas(
      [
        ['akamon_password_resets_total', { outcome: 'code_sent' }],
        ['akamon_password_resets_total', { outcome: 'wrong_code' }],
        ['akamon_password_resets_total', { outcome: 'completed' }],
      ],
      async () => {
        const { browser, page } = await startReset(akamon.url, account.commonId, '10.9.0.1');
        const code = mailedCode(akamon.mails, email);
        const wrong = await browser.submit(page, /\/recover\/code$/, { code: code === '000000' ? '111111' : '000000' });
        expect(wrong.status).toBe(400);
        const passwordPage = await browser.submit(wrong, /\/recover\/code$/, { code });
        const done = await browser.submit(passwordPage, /\/recover\/password$/, { new: 'Recovered-Password-42', confirm: 'Recovered-Password-42' });
        expect(done.html).toContain('Your password was changed');
      },
    );
    expect(moved).toEqual([1, 1, 1]);
  });

  test('identity verification by outcome: unknown, linked, found, a name that no longer matches, a recovery', async () => {
    const account = await readyAccount();
    const row = (await akamon.deps.accounts.findById(account.id))!;
    const identity = { issuer: 'https://idv.example.jp', subject: `pairwise-${account.id}`, name: 'Hanako Todai' };
    const outcomes = ['unknown', 'linked', 'found', 'name_mismatch', 'password_reissued'];
    const moved = await deltas(
      outcomes.map((outcome) => ['akamon_identity_verifications_total', { outcome }]),
      async () => {
        expect((await akamon.deps.idv.identify(identity)).kind).toBe('unknown');
        expect(await akamon.deps.idv.link(row, identity)).toBe(true);
        expect((await akamon.deps.idv.identify(identity)).kind).toBe('found');
        expect((await akamon.deps.idv.identify({ ...identity, name: 'Someone Else' })).kind).toBe('name_mismatch');
        expect(await akamon.deps.idv.recover(row, 'password')).toMatchObject({ ok: true });
      },
    );
    expect(moved).toEqual([1, 1, 1, 1, 1]);
  });

  test('token grants by grant type and result: a redeemed code, a bad code, an unknown grant type', async () => {
    const client = await akamon.createClient({ name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
    const account = await readyAccount();
    const moved = await deltas(
      [
        ['akamon_token_grants_total', { grant_type: 'authorization_code', result: 'success' }],
        ['akamon_token_grants_total', { grant_type: 'authorization_code', result: 'invalid_grant' }],
        ['akamon_token_grants_total', { grant_type: 'other', result: 'unsupported_grant_type' }],
      ],
      async () => {
        const browser = new Browser(akamon.url);
        const started = await startAuthorization(browser, akamon, client);
        const code = codeFrom(await enterCredentials(browser, started.page, account.commonId, account.password));
        expect((await redeem(akamon, client, code, started.verifier)).status).toBe(200);
        expect((await redeem(akamon, client, 'no-such-code', started.verifier)).body.error).toBe('invalid_grant');
        // A client-sent grant type is never a label: it is counted as `other`.
        expect((await tokenRequest(akamon, client, { grant_type: `urn:example:${account.commonId}` })).body.error).toBe('unsupported_grant_type');
      },
    );
    expect(moved).toEqual([1, 1, 1]);
  });

  test('back-channel logout deliveries by outcome: one relying party answers, one is unreachable', async () => {
    const receiver = await backchannelReceiver();
    try {
      const mail = await akamon.createClient({ name: 'Mail', backchannelLogoutUri: receiver.url, redirectUris: ['http://127.0.0.1:9/mail'] });
      const gone = await akamon.createClient({ name: 'Gone', backchannelLogoutUri: 'http://127.0.0.1:9/backchannel', redirectUris: ['http://127.0.0.1:9/gone'] });
      const account = await readyAccount();
      const browser = new Browser(akamon.url);
      const first = await startAuthorization(browser, akamon, mail);
      expect(codeFrom(await enterCredentials(browser, first.page, account.commonId, account.password))).toBeTruthy();
      expect(codeFrom((await startAuthorization(browser, akamon, gone)).page)).toBeTruthy();
      const moved = await deltas(
        [
          ['akamon_backchannel_logouts_total', { outcome: 'success' }],
          ['akamon_backchannel_logouts_total', { outcome: 'error' }],
        ],
        // "Sign out everywhere" and every other revocation of an account's sessions come here.
        () => akamon.deps.payloads.revokeAccount(account.id),
      );
      expect(moved).toEqual([1, 1]);
      expect(await receiver.waitFor(1)).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });

  test("a sweep sets each job's last success; a failed query counts as a statement error", async () => {
    const before = await scrape();
    expect(before.samples.filter((s) => s.name === 'akamon_job_last_success_timestamp_seconds')).toEqual([]);
    const started = Date.now() / 1000;
    await akamon.akamon.sweeper.sweep();
    const after = await scrape();
    const jobs = after.samples.filter((s) => s.name === 'akamon_job_last_success_timestamp_seconds');
    // Every task of the sweeper, by its name.
    expect(jobs.map((s) => s.labels.job).sort()).toEqual([...akamon.akamon.sweeper.lastSuccess().keys()].sort());
    expect(jobs.map((s) => s.labels.job)).toEqual(expect.arrayContaining(['expired_oidc_records', 'scheduled_revocations', 'dashboard_snapshot']));
    expect(jobs.length).toBeGreaterThanOrEqual(10);
    for (const job of jobs) expect(job.value).toBeGreaterThanOrEqual(Math.floor(started));
    expect(after.samples.filter((s) => s.name === 'akamon_job_last_failure_timestamp_seconds')).toEqual([]);

    // A task that fails (its table gone for a moment) is told by its own gauge; the tasks after it still ran.
    const db = akamon.deps.database.db;
    await sql`alter table saml_request rename to saml_request_away`.execute(db);
    const failedAt = Date.now() / 1000;
    try {
      await expect(akamon.akamon.sweeper.sweep()).rejects.toThrow();
    } finally {
      await sql`alter table saml_request_away rename to saml_request`.execute(db);
    }
    const failed = (await scrape()).samples.filter((s) => s.name === 'akamon_job_last_failure_timestamp_seconds');
    expect(failed.map((s) => s.labels.job)).toEqual(['expired_saml_requests']);
    expect(failed[0]!.value).toBeGreaterThanOrEqual(Math.floor(failedAt));
    expect(akamon.akamon.sweeper.lastSuccess().get('notice_delivery')!.getTime() / 1000).toBeGreaterThanOrEqual(Math.floor(failedAt));

    const errors = await deltas([['akamon_db_query_errors_total', { kind: 'statement' }]], () => expect(sql`select * from no_such_table`.execute(akamon.deps.database.db)).rejects.toThrow());
    expect(errors).toEqual([1]);
  });

  test('the hashing queue: depth and running are read at the scrape, a burst beyond the queue is shed and counted', async () => {
    const idle = await scrape();
    expect(seriesValue(idle, 'akamon_password_hash_queue_depth')).toBe(0);
    expect(seriesValue(idle, 'akamon_password_hash_running')).toBe(0);
    const [shed] = await deltas([['akamon_password_hash_shed_total', {}]], async () => {
      // One hashing, one waiting (AKAMON_HASH_QUEUE=1): the other eight are refused at once.
      const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => akamon.deps.hasher.hash('a burst of passwords')));
      expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(8);
    });
    expect(shed).toBe(8);
  });

  test('the database pool: connections by state, the maximum and the waiting queries, where pg exposes them (PGlite too)', async () => {
    const exposition = await scrape();
    const max = seriesValue(exposition, 'akamon_db_pool_max_connections');
    expect(max).toBeGreaterThanOrEqual(1);
    expect(seriesValue(exposition, 'akamon_db_pool_connections', { state: 'idle' }) + seriesValue(exposition, 'akamon_db_pool_connections', { state: 'in_use' })).toBeLessThanOrEqual(max);
    expect(seriesValue(exposition, 'akamon_db_pool_waiting_requests')).toBe(0);
  });

  test('statements sent: each one counts, a failed one too (read on the separate listener, whose scrape sends none)', async () => {
    const server: http.Server = await startMetricsServer(akamon.deps.metrics, 0, '127.0.0.1');
    try {
      const read = async () => seriesValue(parseExposition(await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`)).text()), 'akamon_db_queries_total');
      const before = await read();
      for (let i = 0; i < 3; i += 1) await sql`select 1`.execute(akamon.deps.database.db);
      await expect(sql`select * from no_such_table`.execute(akamon.deps.database.db)).rejects.toThrow();
      expect((await read()) - before).toBe(4);
    } finally {
      server.close();
    }
  });
});

describe('labels stay bounded', () => {
  test('route groups are a fixed set, never the raw path', async () => {
    expect(routeGroup('/auth')).toBe('authorize');
    expect(routeGroup('/interaction/abc123/password')).toBe('authorize');
    expect(routeGroup('/token')).toBe('token');
    expect(routeGroup('/token/introspection')).toBe('token');
    expect(routeGroup('/me')).toBe('userinfo');
    expect(routeGroup('/metrics')).toBe('other');
    expect(routeGroup('/account/security')).toBe('account');
    expect(routeGroup('/accounts')).toBe('other');
    expect(routeGroup('/console/operators')).toBe('console');
    expect(routeGroup('/admin/api/accounts/0123456789')).toBe('admin_api');
    expect(routeGroup('/scim/v2/Users')).toBe('scim');
    expect(routeGroup('/saml/sso')).toBe('saml');
    expect(routeGroup('/static/akamon.css')).toBe('static');
    expect(routeGroup('/wp-login.php')).toBe('other');

    const before = await scrape();
    const count = (e: Exposition) => seriesValue(e, 'akamon_http_request_duration_seconds_count', { group: 'other', status_class: '4xx' });
    expect((await get(`/probe-${commonIds[0]}/x.php`)).status).toBe(404);
    expect(count(await scrape()) - count(before)).toBe(1);
  });

  test('no label value anywhere in the exposition is a Common ID, an address, a client id or a path', async () => {
    const text = await (await get('/metrics', tokens.monitoring)).text();
    const exposition = parseExposition(text);
    const clientIds = (await akamon.deps.database.db.selectFrom('client').select('client_id').execute()).map((c) => c.client_id);
    const values = exposition.samples.flatMap((s) => Object.values(s.labels));
    expect(values.length).toBeGreaterThan(100);
    const suspicious = values.filter(
      (value) =>
        /^\d{10}$/.test(value) || // a Common ID
        /\b\d{1,3}(\.\d{1,3}){3}\b/.test(value) || // an IPv4 address
        /^[0-9a-f]*:[0-9a-f:]+$/i.test(value) || // an IPv6 address
        value.startsWith('/') ||
        commonIds.some((id) => value.includes(id)) ||
        clientIds.some((id) => value === id),
    );
    expect(suspicious).toEqual([]);
    for (const id of commonIds) expect(text).not.toContain(id);
    const groups = new Set(exposition.samples.filter((s) => s.name.startsWith('akamon_http_request_duration_seconds')).map((s) => s.labels.group));
    expect([...groups].every((g) => ['authorize', 'token', 'userinfo', 'account', 'console', 'admin_api', 'scim', 'saml', 'static', 'other'].includes(g))).toBe(true);
  });
});
