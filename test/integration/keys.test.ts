import { request } from 'node:http';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { jwtVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { redeem, signIn } from '../support/flows.ts';
import { loadKeyMaterial } from '../../src/oidc/keys.ts';

let akamon: RunningAkamon;
beforeAll(async () => {
  akamon = await startAkamon();
});
afterAll(() => akamon.close());

const jwks = async () => (await (await fetch(`${akamon.url}/jwks`)).json()) as JSONWebKeySet;

test('keys are generated once, kept encrypted, and JWKS publishes no private parts', async () => {
  const rows = await akamon.deps.database.db.selectFrom('signing_key').selectAll().execute();
  expect(rows.map((r) => r.alg).sort()).toEqual(['ES256', 'RS256']);
  for (const row of rows) {
    expect(row.private_jwk_enc.startsWith('v1.')).toBe(true);
    expect(row.private_jwk_enc).not.toContain('"d"');
  }
  const published = await jwks();
  expect(published.keys).toHaveLength(2);
  for (const key of published.keys) for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(member);
  const cookieKeys = await akamon.deps.database.db.selectFrom('cookie_key').selectAll().execute();
  expect(cookieKeys).toHaveLength(1);
  expect(cookieKeys[0].key_enc.startsWith('v1.')).toBe(true);
});

test('after rotation the old key stays published, tokens it signed still verify, and the new key signs after the propagation delay', async () => {
  const client = await akamon.createClient();
  const account = await akamon.createReadyAccount();
  const before = await signIn(new Browser(akamon.url), akamon, client, account);
  const oldToken = (await redeem(akamon, client, before.code!, before.verifier)).body.id_token as string;
  const oldKid = JSON.parse(Buffer.from(oldToken.split('.')[0], 'base64url').toString()).kid;

  const kids = await akamon.akamon.rotateKeys();
  const published = await jwks();
  expect(published.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, ...kids]));
  await jwtVerify(oldToken, createLocalJWKSet(published), { issuer: akamon.url });

  // Still inside the propagation delay: the old key signs.
  const during = await signIn(new Browser(akamon.url), akamon, client, account);
  const duringToken = (await redeem(akamon, client, during.code!, during.verifier)).body.id_token as string;
  expect(JSON.parse(Buffer.from(duringToken.split('.')[0], 'base64url').toString()).kid).toBe(oldKid);

  // Make the new keys due now, as the clock would after the delay.
  await akamon.deps.database.db
    .updateTable('signing_key')
    .set({ activates_at: new Date(Date.now() - 1000) })
    .where('kid', 'in', kids)
    .execute();
  await akamon.deps.database.db
    .updateTable('signing_key')
    .set({ retired_at: new Date(Date.now() - 1000) })
    .where('kid', 'not in', kids)
    .execute();
  expect(await akamon.akamon.holder.refresh()).toBe(true);
  const after = await signIn(new Browser(akamon.url), akamon, client, account);
  const newToken = (await redeem(akamon, client, after.code!, after.verifier)).body.id_token as string;
  expect(kids).toContain(JSON.parse(Buffer.from(newToken.split('.')[0], 'base64url').toString()).kid);
  const afterJwks = await jwks();
  expect(afterJwks.keys.map((k) => k.kid)).toContain(oldKid);
  await jwtVerify(oldToken, createLocalJWKSet(afterJwks), { issuer: akamon.url });

  // Past the grace period the retired keys leave JWKS.
  await akamon.deps.database.db
    .updateTable('signing_key')
    .set({ retired_at: new Date(Date.now() - 86400_000) })
    .where('kid', 'not in', kids)
    .execute();
  const material = await loadKeyMaterial(akamon.deps.database.db, akamon.deps.box, { propagationSeconds: 2, retiredGraceSeconds: 3600 });
  expect(material.jwks.keys.map((k) => k.kid)).not.toContain(oldKid);
});

test('discovery and JWKS are replayed from a cache that a forged Host or an Origin cannot poison, and each hit is still logged', async () => {
  const discoveryUrl = `${akamon.url}/.well-known/openid-configuration`;
  const first = await fetch(discoveryUrl);
  const firstBody = await first.text();
  expect(JSON.parse(firstBody).token_endpoint).toBe(`${akamon.url}/token`);

  // Another Host is answered as the issuer (issuer-host.ts): nothing of it reaches the cache.
  const forged = await new Promise<string>((resolve, reject) => {
    const url = new URL(discoveryUrl);
    request({ host: url.hostname, port: url.port, path: url.pathname, headers: { host: 'attacker.example' } }, (response) => {
      let text = '';
      response
        .on('data', (chunk) => {
          text += chunk;
        })
        .on('end', () => resolve(text));
    })
      .on('error', reject)
      .end();
  });
  expect(JSON.parse(forged).token_endpoint).toBe(`${akamon.url}/token`);

  const again = await fetch(discoveryUrl);
  expect(again.status).toBe(200);
  expect(await again.text()).toBe(firstBody);
  for (const name of ['content-type', 'access-control-allow-origin', 'vary']) expect(again.headers.get(name)).toBe(first.headers.get(name));
  expect(again.headers.get('access-control-allow-origin')).toBe('*');

  // A browser's cross-origin fetch gets its own origin echoed, not the cached '*'.
  const cors = await fetch(`${akamon.url}/jwks`, { headers: { origin: 'https://spa.example' } });
  expect(cors.headers.get('access-control-allow-origin')).toBe('https://spa.example');
  expect((await fetch(`${akamon.url}/jwks`)).headers.get('access-control-allow-origin')).toBe('*');

  const logged = akamon.logs.filter((line) => line.includes('"path":"/.well-known/openid-configuration"'));
  expect(logged.length).toBeGreaterThanOrEqual(3);
});
