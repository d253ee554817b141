import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { once } from 'node:events';
import net from 'node:net';
import { sql } from 'kysely';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { pastRetryGrace, redeem, signIn, tokenRequest } from '../support/flows.ts';

// Guards issue 12 point 4's last gap: a token request that committed but whose answer never reached
// the client (a dropped connection, a proxy reset, a 503 for a COMMIT the database made). The client
// retries with the code or refresh token it still holds; before, that was taken for a replay and
// revoked the grant: a sign-out by a network fault. Now a retry within the grace gets a new set once,
// and every genuine replay still revokes the grant (src/oidc/token-retry.ts).

let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;
let account: Awaited<ReturnType<RunningAkamon['createReadyAccount']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  client = await akamon.createClient({ name: 'Retry RP', redirectUris: ['http://127.0.0.1:9/retry'] });
  account = await akamon.createReadyAccount();
});
afterAll(async () => {
  await akamon?.close();
});

const basic = () => `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;
const refresh = (refreshToken: string) => tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: refreshToken });
const userinfo = async (accessToken: string) => (await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status;

async function introspect(token: string) {
  const response = await fetch(`${akamon.url}/token/introspection`, {
    method: 'POST',
    headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  return ((await response.json()) as { active: boolean }).active;
}

/** The stored row of a code or token (an opaque token's id is its value). */
const rowOf = (id: string) => akamon.deps.database.db.selectFrom('oidc_payload').select(['model', 'consumed_at', 'retried_at', 'replaces', 'grant_id']).where('id', '=', id).executeTakeFirst();

/** The access and refresh token a consumed code or refresh token was exchanged for, by model. */
async function exchangedFor(id: string): Promise<{ AccessToken?: string; RefreshToken?: string; consumed: string[] }> {
  const rows = await akamon.deps.database.db.selectFrom('oidc_payload').select(['model', 'id', 'consumed_at']).where('replaces', '=', id).execute();
  return {
    ...Object.fromEntries(rows.filter((row) => !row.consumed_at).map((row) => [row.model, row.id])),
    consumed: rows.filter((row) => row.consumed_at).map((row) => row.model),
  };
}

async function until(condition: () => Promise<boolean>, what: string) {
  for (const started = Date.now(); Date.now() - started < 10_000; await new Promise((resolve) => setTimeout(resolve, 20))) {
    if (await condition()) return;
  }
  throw new Error(`timed out waiting until ${what}`);
}

/**
 * A token request whose answer is lost: sent over a raw socket that is never read, and closed
 * unread once the database shows the request committed (what it presented is consumed, and what
 * replaces it is stored in the same transaction).
 */
async function lostAnswer(body: Record<string, string>, presented: string) {
  const form = new URLSearchParams(body).toString();
  const { hostname, port, host } = new URL(akamon.url);
  const socket = net.connect(Number(port), hostname);
  await once(socket, 'connect');
  socket.write(
    ['POST /token HTTP/1.1', `Host: ${host}`, `Authorization: ${basic()}`, 'Content-Type: application/x-www-form-urlencoded', `Content-Length: ${Buffer.byteLength(form)}`, '', form].join('\r\n'),
  );
  try {
    await until(async () => Boolean((await rowOf(presented))?.consumed_at), 'the lost request committed');
  } finally {
    socket.destroy();
  }
  const lost = await exchangedFor(presented);
  expect(lost).toEqual({ AccessToken: expect.any(String), RefreshToken: expect.any(String), consumed: [] });
  return lost as { AccessToken: string; RefreshToken: string };
}

/**
 * The client learns that the answer was lost (its timeout, or a 503 with Retry-After): as if 5 s
 * had passed since the first use. A copy sooner than TOKEN_RETRY_EARLIEST_SECONDS is no retry.
 */
async function clientGaveUp(presented: string) {
  await akamon.deps.database.db
    .updateTable('oidc_payload')
    .set({ consumed_at: sql<Date>`consumed_at - interval '5 seconds'` as never })
    .where('id', '=', presented)
    .execute();
}

async function signedIn() {
  return signIn(new Browser(akamon.url), akamon, client, account, { scope: 'openid' });
}

async function freshTokens() {
  const { code, verifier } = await signedIn();
  const tokens = await redeem(akamon, client, code!, verifier);
  expect(tokens.status).toBe(200);
  return tokens.body as { access_token: string; refresh_token: string };
}

type LogRecord = Record<string, unknown>;
const records = (): LogRecord[] =>
  akamon.logs
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LogRecord);
const retryLines = (grantId: string | null | undefined) => records().filter((r) => r.msg === 'token request answered as a retry of a lost answer' && r.grantId === grantId);
const refusalOf = (requestId: string | null) => records().find((r) => r.msg === 'protocol request refused' && r.requestId === requestId);

/** Every token of the grant is refused: the refresh token at the token endpoint, the access token at userinfo. */
async function expectGrantRevoked(tokens: { access_token: string; refresh_token: string }) {
  expect(await userinfo(tokens.access_token)).toBe(401);
  expect((await refresh(tokens.refresh_token)).body.error).toBe('invalid_grant');
}

describe('an answer lost after its commit: the retry gets a new set', () => {
  test('refresh token: the retry works, the lost set is revoked, and the lost refresh token presented later revokes the grant', async () => {
    const { refresh_token: first } = await freshTokens();
    const lost = await lostAnswer({ grant_type: 'refresh_token', refresh_token: first }, first);
    // Consumed is consumed everywhere but in its client's token request.
    expect(await introspect(first)).toBe(false);
    await clientGaveUp(first);

    const retry = await refresh(first);
    expect(retry.status).toBe(200);
    const retried = retry.body as { access_token: string; refresh_token: string; id_token: string };
    expect([retried.access_token, retried.refresh_token]).not.toContain(lost.AccessToken);
    expect([retried.access_token, retried.refresh_token]).not.toContain(lost.RefreshToken);
    expect(await userinfo(retried.access_token)).toBe(200);
    // The lost answer's access token is revoked; its refresh token is kept, consumed, as a tripwire.
    expect(await userinfo(lost.AccessToken)).toBe(401);
    expect(await rowOf(lost.AccessToken)).toBeUndefined();
    expect((await rowOf(lost.RefreshToken))?.consumed_at).not.toBeNull();
    expect((await rowOf(first))?.retried_at).not.toBeNull();
    expect(await exchangedFor(first)).toEqual({ AccessToken: retried.access_token, RefreshToken: retried.refresh_token, consumed: ['RefreshToken'] });

    // One warn line, with what an operator needs and none of the secrets.
    const grantId = (await rowOf(first))?.grant_id;
    expect(retryLines(grantId)).toEqual([
      expect.objectContaining({ level: 40, event: 'token.retried', clientId: client.clientId, grantType: 'refresh_token', consumedSecondsAgo: expect.any(Number) }),
    ]);
    const log = akamon.logs.join('');
    for (const secret of [first, lost.AccessToken, lost.RefreshToken, retried.access_token, retried.refresh_token, client.clientSecret!]) expect(log).not.toContain(secret);

    // Whoever presents the lost refresh token held it while the client did not: the grant ends.
    const tripped = await refresh(lost.RefreshToken);
    expect(tripped.status).toBe(400);
    expect(tripped.body.error).toBe('invalid_grant');
    expect(refusalOf(tripped.headers.get('x-request-id'))).toMatchObject({ error: 'invalid_grant', detail: expect.stringMatching(/^refresh token already used: .*grant is revoked$/) });
    await expectGrantRevoked(retried);
  });

  test('authorization code: the retry gets a new set that works, and the lost refresh token presented later revokes the grant', async () => {
    const { code, verifier } = await signedIn();
    const body = { grant_type: 'authorization_code', code: code!, redirect_uri: client.redirectUri, code_verifier: verifier };
    const lost = await lostAnswer(body, code!);
    await clientGaveUp(code!);

    const retry = await redeem(akamon, client, code!, verifier);
    expect(retry.status).toBe(200);
    const retried = retry.body as { access_token: string; refresh_token: string; id_token: string };
    expect(retried.id_token).toEqual(expect.any(String));
    expect(retried.refresh_token).not.toBe(lost.RefreshToken);
    expect(await userinfo(retried.access_token)).toBe(200);
    expect(await userinfo(lost.AccessToken)).toBe(401);
    expect(retryLines((await rowOf(code!))?.grant_id)).toEqual([expect.objectContaining({ grantType: 'authorization_code', clientId: client.clientId })]);
    // The retry's refresh token works like any other.
    const rotated = await refresh(retried.refresh_token);
    expect(rotated.status).toBe(200);

    expect((await refresh(lost.RefreshToken)).body.error).toBe('invalid_grant');
    await expectGrantRevoked(rotated.body as { access_token: string; refresh_token: string });
  });

  test('another client cannot take the retry: it is refused and nothing changes', async () => {
    const other = await akamon.createClient({ name: 'Other RP', redirectUris: ['http://127.0.0.1:9/other'] });
    const { refresh_token: first } = await freshTokens();
    const lost = await lostAnswer({ grant_type: 'refresh_token', refresh_token: first }, first);
    await clientGaveUp(first);
    const stolen = await tokenRequest(akamon, other, { grant_type: 'refresh_token', refresh_token: first });
    expect(stolen.body.error).toBe('invalid_grant');
    expect((await rowOf(first))?.retried_at).toBeNull();
    // The client's own retry still works afterwards.
    const retry = await refresh(first);
    expect(retry.status).toBe(200);
    expect(await userinfo(lost.AccessToken)).toBe(401);
    expect(await userinfo(retry.body.access_token)).toBe(200);
  });
});

describe('a genuine replay still revokes the grant', () => {
  test('after the grace', async () => {
    const { refresh_token: first } = await freshTokens();
    const lost = await lostAnswer({ grant_type: 'refresh_token', refresh_token: first }, first);
    const grantId = (await rowOf(first))?.grant_id;
    await pastRetryGrace(akamon, first);
    const replay = await refresh(first);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    expect(refusalOf(replay.headers.get('x-request-id'))?.detail).toBe(
      `refresh token already used: presented again after the ${akamon.config.tokenRetryGraceSeconds} s retry grace; the grant is revoked`,
    );
    expect(records().filter((r) => r.msg === 'grant revoked' && r.grantId === grantId)).toHaveLength(1);
    await expectGrantRevoked({ access_token: lost.AccessToken, refresh_token: lost.RefreshToken });
  });

  test('after the grace, for a code', async () => {
    const { code, verifier } = await signedIn();
    const tokens = await redeem(akamon, client, code!, verifier);
    expect(tokens.status).toBe(200);
    await pastRetryGrace(akamon, code!);
    const replay = await redeem(akamon, client, code!, verifier);
    expect(replay.body.error).toBe('invalid_grant');
    expect(refusalOf(replay.headers.get('x-request-id'))?.detail).toMatch(/^authorization code already consumed: presented again after/);
    await expectGrantRevoked(tokens.body as { access_token: string; refresh_token: string });
  });

  test('a copy sent alongside the first use (a double submit): within 2 s of it, no retry', async () => {
    const { refresh_token: first } = await freshTokens();
    const lost = await lostAnswer({ grant_type: 'refresh_token', refresh_token: first }, first);
    const copy = await refresh(first);
    expect(copy.body.error).toBe('invalid_grant');
    expect(refusalOf(copy.headers.get('x-request-id'))?.detail).toBe('refresh token already used: presented again within 2 s of its first use, alongside it; the grant is revoked');
    await expectGrantRevoked({ access_token: lost.AccessToken, refresh_token: lost.RefreshToken });
  });

  test('once the refresh token it was exchanged for has been used, even within the grace', async () => {
    const { refresh_token: first } = await freshTokens();
    const second = await refresh(first);
    expect(second.status).toBe(200);
    const third = await refresh(second.body.refresh_token);
    expect(third.status).toBe(200);
    await clientGaveUp(first);
    const replay = await refresh(first);
    expect(replay.body.error).toBe('invalid_grant');
    expect(refusalOf(replay.headers.get('x-request-id'))?.detail).toBe('refresh token already used: the refresh token it was exchanged for has been used; the grant is revoked');
    await expectGrantRevoked(third.body as { access_token: string; refresh_token: string });
  });

  test('a public client gets no retry: its code is all a thief needs, so a second presentation is a replay', async () => {
    const publicClient = await akamon.createClient({ name: 'Public RP', redirectUris: ['http://127.0.0.1:9/public'], public: true });
    const { code, verifier } = await signIn(new Browser(akamon.url), akamon, publicClient, account, { scope: 'openid' });
    const first = await redeem(akamon, publicClient, code!, verifier);
    expect(first.status).toBe(200);
    await clientGaveUp(code!);
    const again = await redeem(akamon, publicClient, code!, verifier);
    expect(again.body.error).toBe('invalid_grant');
    expect(refusalOf(again.headers.get('x-request-id'))?.detail).toBe(
      'authorization code already consumed: the client does not authenticate, so a second presentation gets no retry; the grant is revoked',
    );
    expect(await userinfo(first.body.access_token)).toBe(401);
  });

  test('a second retry: each consumed token gets one', async () => {
    const { refresh_token: first } = await freshTokens();
    await lostAnswer({ grant_type: 'refresh_token', refresh_token: first }, first);
    await clientGaveUp(first);
    const retry = await refresh(first);
    expect(retry.status).toBe(200);
    const again = await refresh(first);
    expect(again.body.error).toBe('invalid_grant');
    expect(refusalOf(again.headers.get('x-request-id'))?.detail).toBe('refresh token already used: its one retry was granted already; the grant is revoked');
    await expectGrantRevoked(retry.body as { access_token: string; refresh_token: string });
  });

  test('20 parallel retries of one consumed token: one new set, 19 invalid_grant, and the grant revoked', async () => {
    const { refresh_token: first } = await freshTokens();
    await lostAnswer({ grant_type: 'refresh_token', refresh_token: first }, first);
    await clientGaveUp(first);
    const grantId = (await rowOf(first))?.grant_id;
    const results = await Promise.all(Array.from({ length: 20 }, () => refresh(first)));
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    // Twenty transactions on one grant's rows: on PostgreSQL one may be chosen as a deadlock's victim
    // or outwait its lock timeout; it is answered as busy (503 with Retry-After), and a retry after
    // it meets the revoked grant. Any other answer fails.
    const busy = results.filter((r) => r.status === 503);
    for (const loser of busy) expect(loser.headers.get('retry-after')).toMatch(/^\d+$/);
    for (const loser of results.filter((r) => r.status !== 200 && r.status !== 503)) {
      expect(loser.status).toBe(400);
      expect(loser.body.error).toBe('invalid_grant');
      // It waited for the winner's locks and then saw its retry, or came after a loser revoked the grant.
      expect(refusalOf(loser.headers.get('x-request-id'))?.detail).toMatch(
        /^(refresh token already used: (its one retry was granted already; the grant is revoked|it is gone)|refresh token not found|grant not found)$/,
      );
    }
    expect(retryLines(grantId)).toHaveLength(1);
    // Two senders of one consumed token: the new set could be either's, so the grant ends with it.
    await expectGrantRevoked(winners[0].body as { access_token: string; refresh_token: string });
    expect(records().filter((r) => r.level === 50)).toEqual([]);
  });
});
