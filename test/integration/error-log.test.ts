import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, authorizeUrl, pkce } from '../support/browser.ts';
import { pastRetryGrace, redeem, signIn, tokenRequest } from '../support/flows.ts';

/**
 * Guards issue 12 point 8: a refused protocol request reaches the log with the provider's reason
 * (client, grant type, error, description, detail), so an operator can tell a relying party why it
 * is refused, and never with a secret the request carried.
 */
let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;
let legacy: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  client = await akamon.createClient({ name: 'LMS' });
  legacy = await akamon.createClient({ name: 'Mail server', legacyPassword: true, redirectUris: ['http://127.0.0.1:9/mail'] });
});
afterAll(() => akamon.close());

type Record_ = Record<string, unknown>;
const records = (): Record_[] =>
  akamon.logs
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record_);
const refusals = () => records().filter((r) => r.msg === 'protocol request refused');

/** The refusal logged for the request with this id (the X-Request-Id Akamon echoed). */
function refusalOf(requestId: string | null): Record_ {
  const found = refusals().filter((r) => r.requestId === requestId);
  expect(found).toHaveLength(1);
  return found[0];
}

/** None of the secrets a test sent appears anywhere in the log, in any line. */
function expectAbsent(...secrets: string[]) {
  const text = akamon.logs.join('');
  for (const secret of secrets) expect(text).not.toContain(secret);
}

describe('refused protocol requests are logged with the reason, never with a secret', () => {
  test('a wrong client secret: invalid_client, the client id and "invalid secret provided"', async () => {
    const wrongSecret = 'wrong-secret-Zx81qPp0vN3';
    const response = await tokenRequest(
      akamon,
      { clientId: client.clientId, clientSecret: wrongSecret },
      { grant_type: 'authorization_code', code: 'code-Ab12Cd34', redirect_uri: client.redirectUri, code_verifier: 'v'.repeat(43) },
    );
    expect(response.status).toBe(401);
    expect(response.body.error).toBe('invalid_client');
    expect(refusalOf(response.headers.get('x-request-id'))).toMatchObject({
      level: 40,
      event: 'grant.error',
      endpoint: 'token',
      clientId: client.clientId,
      grantType: 'authorization_code',
      error: 'invalid_client',
      description: 'client authentication failed',
      detail: 'invalid secret provided',
      status: 401,
    });
    expectAbsent(wrongSecret, 'code-Ab12Cd34', Buffer.from(`${client.clientId}:${wrongSecret}`).toString('base64'));
  });

  test('an authorization code that was already redeemed: invalid_grant with the reason', async () => {
    const browser = new Browser(akamon.url);
    const account = await akamon.createReadyAccount();
    const { code, verifier } = await signIn(browser, akamon, client, account);
    expect((await redeem(akamon, client, code!, verifier)).status).toBe(200);
    // Past the retry grace: within it, this would be a retry of a lost answer (token-retry.test.ts).
    await pastRetryGrace(akamon, code!);
    const replay = await redeem(akamon, client, code!, verifier);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    const refusal = refusalOf(replay.headers.get('x-request-id'));
    expect(refusal).toMatchObject({ event: 'grant.error', clientId: client.clientId, grantType: 'authorization_code', error: 'invalid_grant', description: 'grant request is invalid' });
    expect(String(refusal.detail)).toMatch(/authorization code/);
    expectAbsent(code!, verifier, client.clientSecret!, account.password);
  });

  test('an unknown refresh token and a wrong PKCE verifier each say which', async () => {
    const refreshToken = 'rt-not-a-real-token-Qw7Er';
    const refresh = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: refreshToken });
    expect(refresh.body.error).toBe('invalid_grant');
    expect(refusalOf(refresh.headers.get('x-request-id'))).toMatchObject({ grantType: 'refresh_token', error: 'invalid_grant', detail: 'refresh token not found' });

    const browser = new Browser(akamon.url);
    const { code } = await signIn(browser, akamon, client, await akamon.createReadyAccount());
    const wrongVerifier = pkce().verifier;
    const pkceRefused = await redeem(akamon, client, code!, wrongVerifier);
    expect(pkceRefused.body.error).toBe('invalid_grant');
    expect(refusalOf(pkceRefused.headers.get('x-request-id'))).toMatchObject({ clientId: client.clientId, error: 'invalid_grant', detail: 'code_verifier does not match code_challenge' });
    expectAbsent(refreshToken, code!, wrongVerifier, client.clientSecret!);
  });

  test('a client assertion the client is not registered for: refused, the assertion never logged', async () => {
    const assertion = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.assertion-signature-Kk93';
    const response = await fetch(`${akamon.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: client.clientId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    const refusal = refusalOf(response.headers.get('x-request-id'));
    expect(refusal).toMatchObject({ event: 'grant.error', grantType: 'client_credentials' });
    expect(typeof refusal.error).toBe('string');
    expect(typeof (refusal.detail ?? refusal.description)).toBe('string');
    expectAbsent(assertion, 'assertion-signature-Kk93');
  });

  test('the password grant with a wrong password: the reason, not the password', async () => {
    const account = await akamon.createReadyAccount();
    const wrongPassword = 'Not-the-password-93!x';
    const response = await tokenRequest(akamon, legacy, { grant_type: 'password', username: account.commonId, password: wrongPassword, scope: 'openid' });
    expect(response.body.error).toBe('invalid_grant');
    expect(refusalOf(response.headers.get('x-request-id'))).toMatchObject({
      clientId: legacy.clientId,
      grantType: 'password',
      error: 'invalid_grant',
      description: 'grant request is invalid',
      detail: 'invalid credentials',
    });
    expectAbsent(wrongPassword, legacy.clientSecret!);
  });

  test('an unknown client at the token endpoint (client id in the body) is named', async () => {
    const response = await fetch(`${akamon.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'no-such-client', client_secret: 'posted-secret-Ty65', code: 'x', redirect_uri: 'http://127.0.0.1:9/x' }),
    });
    expect(response.status).toBe(401);
    expect(refusalOf(response.headers.get('x-request-id'))).toMatchObject({ clientId: 'no-such-client', error: 'invalid_client', detail: 'client not found' });
    expectAbsent('posted-secret-Ty65');
  });

  test('introspection and revocation with a wrong secret, and userinfo with a bad token', async () => {
    const token = 'at-made-up-Lp20';
    for (const endpoint of ['/token/introspection', '/token/revocation']) {
      const response = await fetch(`${akamon.url}${endpoint}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.clientId}:wrong-Gh55`).toString('base64')}` },
        body: new URLSearchParams({ token }),
      });
      expect(response.status).toBe(401);
      expect(refusalOf(response.headers.get('x-request-id'))).toMatchObject({ clientId: client.clientId, error: 'invalid_client', detail: 'invalid secret provided' });
    }
    const userinfo = await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(userinfo.status).toBe(401);
    expect(refusalOf(userinfo.headers.get('x-request-id'))).toMatchObject({ event: 'userinfo.error', error: 'invalid_token' });
    expectAbsent(token, 'wrong-Gh55');
  });

  test('an authorization request with an unregistered redirect URI names the client and the reason', async () => {
    const { challenge } = pkce();
    const response = await fetch(authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: 'https://evil.example/cb', code_challenge: challenge, code_challenge_method: 'S256' }), {
      redirect: 'manual',
    });
    expect(response.status).toBe(400);
    expect(refusalOf(response.headers.get('x-request-id'))).toMatchObject({
      event: 'authorization.error',
      endpoint: 'authorization',
      clientId: client.clientId,
      error: 'invalid_redirect_uri',
      level: 40,
    });
  });

  test('prompt=none without a session is an ordinary answer: logged at info, not warn', async () => {
    const { challenge } = pkce();
    const response = await fetch(authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256', prompt: 'none' }), {
      redirect: 'manual',
    });
    expect(response.status).toBe(303);
    expect(new URL(response.headers.get('location')!).searchParams.get('error')).toBe('login_required');
    expect(refusalOf(response.headers.get('x-request-id'))).toMatchObject({ event: 'authorization.error', clientId: client.clientId, error: 'login_required', level: 30 });
  });
});
