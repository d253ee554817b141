import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey } from 'jose';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';

// A hand-written upstream provider on loopback whose ID tokens can be wrong in every way the
// relying-party checks must catch; it also checks Akamon's private_key_jwt client assertion.

type Mode = 'good' | 'wrong_nonce' | 'wrong_audience' | 'wrong_issuer' | 'expired' | 'bad_signature' | 'no_name';

let mode: Mode = 'good';
let assertionChecked = false;
let akamon: RunningAkamon;
let server: http.Server;
let issuer: string;
const pending = new Map<string, { nonce: string; challenge: string }>();

async function startProvider(signing: CryptoKey, impostor: CryptoKey, opPublic: Record<string, unknown>, clientPublic: CryptoKey) {
  server = http.createServer(async (req, res) => {
    const url = new URL(req.url!, issuer);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['ES256'],
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks') return json(200, { keys: [opPublic] });
    if (url.pathname === '/authorize') {
      const code = crypto.randomBytes(16).toString('hex');
      pending.set(code, { nonce: url.searchParams.get('nonce')!, challenge: url.searchParams.get('code_challenge')! });
      const back = new URL(url.searchParams.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state')!);
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      const request = pending.get(form.get('code') ?? '');
      pending.delete(form.get('code') ?? '');
      if (!request) return json(400, { error: 'invalid_grant' });
      const verifier = form.get('code_verifier') ?? '';
      if (crypto.createHash('sha256').update(verifier).digest('base64url') !== request.challenge) return json(400, { error: 'invalid_grant' });
      try {
        await jwtVerify(form.get('client_assertion') ?? '', clientPublic, { issuer: 'akamon-rp', subject: 'akamon-rp', audience: [issuer, `${issuer}/token`] });
        assertionChecked = form.get('client_assertion_type') === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
      } catch {
        return json(401, { error: 'invalid_client' });
      }
      const now = Math.floor(Date.now() / 1000);
      const claims: Record<string, unknown> = { sub: 'pairwise-subject-1', name: 'Test Person', nonce: request.nonce };
      if (mode === 'wrong_nonce') claims.nonce = 'another-nonce';
      if (mode === 'no_name') delete claims.name;
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'op' })
        .setIssuer(mode === 'wrong_issuer' ? 'https://evil.example' : issuer)
        .setAudience(mode === 'wrong_audience' ? 'someone-else' : 'akamon-rp')
        .setIssuedAt(mode === 'expired' ? now - 7200 : now)
        .setExpirationTime(mode === 'expired' ? now - 3600 : now + 300)
        .sign(mode === 'bad_signature' ? impostor : signing);
      return json(200, { access_token: 'at', token_type: 'Bearer', expires_in: 300, id_token: token });
    }
    json(404, { error: 'not_found' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const op = await generateKeyPair('ES256');
  const impostor = await generateKeyPair('ES256');
  const client = await generateKeyPair('ES256', { extractable: true });
  await startProvider(op.privateKey, impostor.privateKey, { ...(await exportJWK(op.publicKey)), kid: 'op', alg: 'ES256', use: 'sig' }, client.publicKey);
  // The relying party's key as an operator would keep it: a PKCS#8 PEM file.
  const pem = crypto.createPrivateKey({ key: (await exportJWK(client.privateKey)) as crypto.JsonWebKey, format: 'jwk' }).export({ format: 'pem', type: 'pkcs8' });
  const keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'akamon-rp-key-')), 'key.pem');
  fs.writeFileSync(keyFile, pem, { mode: 0o600 });
  akamon = await startAkamon({ env: { AKAMON_IDV_ISSUER: issuer, AKAMON_IDV_CLIENT_ID: 'akamon-rp', AKAMON_IDV_PRIVATE_KEY_FILE: keyFile } });
});
afterAll(async () => {
  await akamon.close();
  await new Promise((r) => server.close(r));
});

/** A verification from /recover through the upstream; returns Akamon's answer to the callback. */
async function verify() {
  const browser = new Browser(akamon.url);
  const start = await browser.visit(`${akamon.url}/recover`);
  const away = await browser.submit(start, /\/idv\/start$/, {});
  expect(away.url.startsWith(`${issuer}/authorize`)).toBe(true);
  const authorize = new URL(away.url);
  expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorize.searchParams.get('nonce')).toBeTruthy();
  expect(authorize.searchParams.get('state')).toBeTruthy();
  const redirect = await fetch(away.url, { redirect: 'manual' });
  return browser.visit(redirect.headers.get('location')!);
}

describe('the relying-party checks on the upstream answer', () => {
  test('a correct answer is accepted (private_key_jwt from a PEM key): an unknown card leads to the office page', async () => {
    mode = 'good';
    assertionChecked = false;
    const page = await verify();
    expect(assertionChecked).toBe(true);
    expect(page.status).toBe(404);
    expect(page.html).toContain('not linked to any account');
  });

  for (const bad of ['wrong_nonce', 'wrong_audience', 'wrong_issuer', 'expired', 'bad_signature', 'no_name'] as const) {
    test(`an ID token with ${bad.replace('_', ' ')} is refused`, async () => {
      mode = bad;
      const page = await verify();
      expect(page.status).toBe(400);
      expect(page.html).toContain('could not be confirmed');
      expect(akamon.logs.join('')).toContain('identity verification failed');
    });
  }

  test('an unreachable provider is a 503 page that asks to try again later', async () => {
    const node = await startAkamon({ env: { AKAMON_IDV_ISSUER: 'http://127.0.0.1:9', AKAMON_IDV_CLIENT_ID: 'x', AKAMON_IDV_CLIENT_SECRET: 'y' } });
    try {
      const browser = new Browser(node.url);
      const page = await browser.submit(await browser.visit(`${node.url}/recover`), /\/idv\/start$/, {});
      expect(page.status).toBe(503);
      expect(page.headers.get('retry-after')).toBe('60');
      expect(page.html).toContain('cannot be reached');
    } finally {
      await node.close();
    }
  });
});
