import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';

/**
 * Issue 16 point 5: endpoint URLs used to follow the request's Host header, so discovery fetched
 * through another name named endpoints there and split the single sign-on session between two
 * cookie domains. Every URL is now under AKAMON_ISSUER; a browser on another name is sent there.
 * node:http rather than fetch, which does not let a caller choose the Host header.
 */
let akamon: RunningAkamon;
beforeAll(async () => {
  akamon = await startAkamon({ env: { AKAMON_TRUST_PROXY: 'true' } });
});
afterAll(() => akamon.close());

function get(path: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const url = new URL(path, akamon.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname + url.search, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const urlsIn = (metadata: Record<string, unknown>) => Object.values(metadata).filter((v): v is string => typeof v === 'string' && /^https?:\/\//.test(v));

test('discovery names endpoints under the issuer whatever Host or X-Forwarded-Host the request carried', async () => {
  for (const headers of [{ host: 'alias.example.ac.jp' }, { host: 'alias.example.ac.jp:8443' }, { host: new URL(akamon.url).host, 'x-forwarded-host': 'evil.example' }] as Record<string, string>[]) {
    const answer = await get('/.well-known/openid-configuration', headers);
    expect(answer.status).toBe(200);
    const metadata = JSON.parse(answer.body);
    expect(metadata.issuer).toBe(akamon.url);
    const urls = urlsIn(metadata);
    expect(urls.length).toBeGreaterThan(5);
    for (const url of urls) expect(url.startsWith(`${akamon.url}/`) || url === akamon.url).toBe(true);
  }
});

test('a browser asking for a page under another name is sent to the same page under the issuer', async () => {
  const answer = await get('/auth?client_id=x&scope=openid', { host: 'alias.example.ac.jp', accept: 'text/html,application/xhtml+xml' });
  expect(answer.status).toBe(308);
  expect(answer.headers.location).toBe(`${akamon.url}/auth?client_id=x&scope=openid`);
  // Probes and API clients are answered where they asked.
  expect((await get('/healthz', { host: 'alias.example.ac.jp' })).status).toBe(200);
});
