import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import argon2 from 'argon2';
import { generate } from 'otplib';
import { loadConfig } from '../src/config/config.ts';
import { authorizeUrl, Browser, pkce } from '../test/support/browser.ts';
import { cpuSeconds, load, peakRssMiB, type Summary } from './measure.ts';
import { PASSWORD, REDIRECT_URI, seed, startServer, type BenchAccount, type Seeded } from './setup.ts';

// npm run bench [-- --concurrency C --signins N --seconds S]: Akamon as a separate process with
// production argon2 parameters, on PGlite, or on Postgres when DATABASE_URL is set. Loopback only.

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: String(os.availableParallelism() * 2) },
    signins: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    out: { type: 'string', default: path.join('bench', 'results') },
  },
});
const C = Number(values.concurrency);
const SIGNINS = Number(values.signins);
const SECONDS = Number(values.seconds);
const cores = os.availableParallelism();
const argonParams = loadConfig({}).argon2;

interface Tokens {
  accessToken: string;
  refreshToken: string;
}

const basic = (client: Seeded['client']) => `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64')}`;

async function tokenRequest(url: string, client: Seeded['client'], body: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
  const response = await fetch(`${url}/token`, { method: 'POST', headers: { authorization: basic(client), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });
  return { status: response.status, body: await response.json() as Record<string, string> };
}

/** One person signing in as a browser does: authorize, identifier, password, TOTP, code, token, userinfo. */
async function signIn(url: string, client: Seeded['client'], account: BenchAccount): Promise<Tokens | undefined> {
  const browser = new Browser(url);
  const { verifier, challenge } = pkce();
  let page = await browser.visit(authorizeUrl(url, { client_id: client.clientId, redirect_uri: REDIRECT_URI, code_challenge: challenge, code_challenge_method: 'S256' }));
  page = await browser.submit(page, /\/identifier$/, { identifier: account.commonId });
  page = await browser.submit(page, /\/password$/, { password: PASSWORD });
  if (page.status !== 200) return undefined;
  // The next time step: the enrolment used the previous one, and each account signs in once per run.
  page = await browser.submit(page, /\/totp$/, { code: await generate({ secret: account.totpSecret, epoch: Math.floor(Date.now() / 1000) + 30 }) });
  const code = page.url.startsWith(REDIRECT_URI) ? new URL(page.url).searchParams.get('code') : null;
  if (!code) return undefined;
  const tokens = await tokenRequest(url, client, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
  if (tokens.status !== 200) return undefined;
  const userinfo = await fetch(`${url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } });
  await userinfo.arrayBuffer();
  return userinfo.ok ? { accessToken: tokens.body.access_token!, refreshToken: tokens.body.refresh_token! } : undefined;
}

/** Refresh grants over a pool of grants, each rotated in turn (one request per grant at a time). */
function refresher(url: string, client: Seeded['client'], pool: Tokens[]) {
  const free = [...pool];
  return async () => {
    const tokens = free.pop();
    if (!tokens) return false;
    const answer = await tokenRequest(url, client, { grant_type: 'refresh_token', refresh_token: tokens.refreshToken });
    if (answer.status === 200) {
      tokens.refreshToken = answer.body.refresh_token!;
      tokens.accessToken = answer.body.access_token!;
    }
    free.unshift(tokens);
    return answer.status === 200;
  };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  return response.ok;
}

async function main(): Promise<void> {
  const port = 30_000 + Math.floor(Math.random() * 20_000);
  const database = process.env.DATABASE_URL ? 'postgres' : 'pglite';
  // Enough accounts for every sign-in of the run, the storm included (each signs in once).
  const seeded = await seed({ people: SIGNINS * 4 + C * SECONDS * 4, port, databaseUrl: process.env.DATABASE_URL });
  const server = await startServer(seeded.env);
  const pid = server.process.pid!;
  const { url } = server;
  const accounts = [...seeded.accounts];
  const results: Record<string, unknown> = {};
  try {
    // b. The physical bound: argon2id verifications alone, at the server's parameters and hash concurrency.
    const hash = await argon2.hash(PASSWORD, { type: argon2.argon2id, ...argonParams });
    const bound = await load({ concurrency: cores, count: cores * 25 }, async () => argon2.verify(hash, PASSWORD));

    // a. Full sign-ins with C concurrent people.
    const tokens: Tokens[] = [];
    const cpuBefore = cpuSeconds(pid);
    const signins = await load({ concurrency: C, count: SIGNINS }, async () => {
      const result = await signIn(url, seeded.client, accounts.pop()!);
      if (result) tokens.push(result);
      return result !== undefined;
    });
    const cpuPerSignin = (cpuSeconds(pid) - cpuBefore) / Math.max(1, signins.count);

    // c. Token endpoints and metadata.
    const refresh = await load({ concurrency: C, seconds: SECONDS }, refresher(url, seeded.client, tokens));
    const discovery = await load({ concurrency: 32, seconds: SECONDS / 2 }, () => get(`${url}/.well-known/openid-configuration`));
    const jwks = await load({ concurrency: 32, seconds: SECONDS / 2 }, () => get(`${url}/jwks`));
    const userinfo = await load({ concurrency: C, seconds: SECONDS / 2 }, (i) => get(`${url}/me`, { authorization: `Bearer ${tokens[i % tokens.length]!.accessToken}` }));
    const introspection = await load({ concurrency: C, seconds: SECONDS / 2 }, async (i) => {
      const response = await fetch(`${url}/token/introspection`, { method: 'POST', headers: { authorization: basic(seeded.client), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: tokens[i % tokens.length]!.accessToken }) });
      return response.ok && (await response.json() as { active?: boolean }).active === true;
    });

    // d. A login storm at twice the measured sign-in rate while refresh traffic runs.
    const stormStatuses = new Map<number, number>();
    const turnedAway: number[] = [];
    const stormRate = Math.max(1, signins.perSecond * 2);
    const storm = (async () => {
      const started = performance.now();
      const inflight: Array<Promise<void>> = [];
      for (let i = 0; performance.now() - started < SECONDS * 1000; i += 1) {
        const due = started + (i * 1000) / stormRate;
        if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
        const account = accounts.pop();
        if (!account) break;
        inflight.push((async () => {
          const t0 = performance.now();
          const browser = new Browser(url);
          const { challenge } = pkce();
          let page = await browser.visit(authorizeUrl(url, { client_id: seeded.client.clientId, redirect_uri: REDIRECT_URI, code_challenge: challenge, code_challenge_method: 'S256' }));
          page = await browser.submit(page, /\/identifier$/, { identifier: account.commonId });
          page = await browser.submit(page, /\/password$/, { password: PASSWORD });
          stormStatuses.set(page.status, (stormStatuses.get(page.status) ?? 0) + 1);
          if (page.status === 503) turnedAway.push(performance.now() - t0);
        })().catch(() => { stormStatuses.set(0, (stormStatuses.get(0) ?? 0) + 1); }));
      }
      await Promise.all(inflight);
    })();
    const refreshUnderStorm = await load({ concurrency: C, seconds: SECONDS }, refresher(url, seeded.client, tokens));
    await storm;
    const sortedAway = turnedAway.sort((a, b) => a - b);

    Object.assign(results, {
      machine: { cores, node: process.version, database, platform: `${os.type()} ${os.release()}` },
      parameters: { argon2: argonParams, concurrency: C, signins: SIGNINS, seconds: SECONDS },
      argon2Bound: bound,
      signin: { ...signins, cpuSecondsPerSignin: Math.round(cpuPerSignin * 1000) / 1000, ratioToBound: Math.round((signins.perSecond / bound.perSecond) * 100) / 100 },
      refresh, discovery, jwks, userinfo, introspection,
      storm: {
        attemptsPerSecond: Math.round(stormRate * 10) / 10,
        statuses: Object.fromEntries(stormStatuses),
        turnedAwayP50: sortedAway.length ? Math.round(sortedAway[Math.floor(sortedAway.length / 2)]!) : null,
        refresh: refreshUnderStorm,
        refreshP99Ratio: refresh.p99 ? Math.round((refreshUnderStorm.p99 / refresh.p99) * 100) / 100 : null,
        otherServerErrors: [...stormStatuses].filter(([status]) => status >= 500 && status !== 503).reduce((n, [, count]) => n + count, 0),
      },
      peakRssMiB: peakRssMiB(pid),
      readyMs: server.readyMs,
    });
  } finally {
    await server.stop();
    await seeded.cleanup();
  }
  fs.mkdirSync(values.out!, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(values.out!, `${stamp}-${database}.json`), `${JSON.stringify(results, null, 2)}\n`);
  const table = markdown(results as never);
  fs.writeFileSync(path.join(values.out!, `${stamp}-${database}.md`), table);
  process.stdout.write(table);
}

function markdown(r: { machine: { cores: number; database: string; node: string }; parameters: { argon2: { memoryCost: number; timeCost: number; parallelism: number }; concurrency: number }; argon2Bound: Summary; signin: Summary & { cpuSecondsPerSignin: number; ratioToBound: number }; refresh: Summary; discovery: Summary; jwks: Summary; userinfo: Summary; introspection: Summary; storm: { attemptsPerSecond: number; statuses: Record<string, number>; turnedAwayP50: number | null; refresh: Summary; refreshP99Ratio: number | null; otherServerErrors: number }; peakRssMiB: number; readyMs: number }): string {
  const row = (name: string, s: Summary, note = '') => `| ${name} | ${s.perSecond} | ${(s.perSecond / r.machine.cores).toFixed(1)} | ${s.p50} | ${s.p95} | ${s.p99} | ${s.errors} | ${note} |`;
  return [
    `Akamon benchmark: ${r.machine.cores} cores, ${r.machine.database}, Node ${r.machine.node}, argon2id m=${r.parameters.argon2.memoryCost} KiB t=${r.parameters.argon2.timeCost} p=${r.parameters.argon2.parallelism}, concurrency ${r.parameters.concurrency}`,
    '',
    '| measure | per second | per core | p50 ms | p95 ms | p99 ms | errors | note |',
    '|---|---|---|---|---|---|---|---|',
    row('argon2id verify (bound)', r.argon2Bound),
    row('full sign-in (password + TOTP)', r.signin, `${r.signin.ratioToBound} of bound; ${r.signin.cpuSecondsPerSignin} CPU s each`),
    row('refresh grant (rotation)', r.refresh),
    row('discovery', r.discovery),
    row('JWKS', r.jwks),
    row('userinfo', r.userinfo),
    row('introspection', r.introspection),
    row('refresh during a login storm', r.storm.refresh, `p99 ${r.storm.refreshP99Ratio}× alone; storm ${r.storm.attemptsPerSecond}/s, statuses ${JSON.stringify(r.storm.statuses)}, turned away in ${r.storm.turnedAwayP50} ms (p50), other 5xx ${r.storm.otherServerErrors}`),
    '',
    `Peak server RSS ${r.peakRssMiB} MiB; ready ${r.readyMs} ms after start.`,
    '',
  ].join('\n');
}

await main();
