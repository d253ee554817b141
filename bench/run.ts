import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/config.ts';
import { Browser } from '../test/support/browser.ts';
import { cpuPlan, onCpus, pinSelf } from './cpus.ts';
import { cpuSeconds, load, peakRssMiB, type Summary } from './measure.ts';
import { seed, startCommand } from './setup.ts';
import { compare, comparisonMarkdown, meter, startPair, targets, type TargetInputs } from './compare.ts';
import { runScale } from './scale.ts';
import { samlSp } from './saml.ts';
import { basic, call, refresher, signIn, submitPassword, toPasswordPage, tokenRequest, type Tokens } from './client.ts';

// npm run bench [-- --concurrency C --signins N --seconds S --server-cpus K --profile --rounds R
// --round-signins N --round-seconds S --warm-up N] [--scale ROWS]: Akamon as a separate process with production
// argon2 parameters, on PGlite, or on Postgres when DATABASE_URL is set, and beside it the baseline
// (compare.ts). Loopback only; the servers and this load generator run on CPUs of their own.

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string' },
    signins: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '10' },
    'server-cpus': { type: 'string' },
    out: { type: 'string', default: path.join('bench', 'results') },
    profile: { type: 'boolean', default: false },
    scale: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    'round-signins': { type: 'string', default: '150' },
    'round-seconds': { type: 'string', default: '2.5' },
    'warm-up': { type: 'string', default: '1000' },
  },
});
const machineCores = os.availableParallelism();
const plan = cpuPlan(values['server-cpus'] ? Number(values['server-cpus']) : undefined);
const C = Number(values.concurrency ?? plan.serverCores * 4);
const SIGNINS = Number(values.signins);
const SECONDS = Number(values.seconds);
const ROUND_SIGNINS = Number(values['round-signins']);
const WARM_UP = Number(values['warm-up']);
const argonParams = loadConfig({}).argon2;

const ratio = (a: number, b: number) => (b ? Math.round((a / b) * 100) / 100 : null);

async function get(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  return (await call(url, { headers })).status === 200;
}

/** The bound runs as a process of its own on the server's CPUs, with npm start's environment and node flags, so both meet the same hardware and allocator. */
function argon2Bound(): Summary & { concurrency: number; cpuMsPerVerify: number } {
  const start = startCommand();
  const [command, args] = onCpus(plan.server, process.execPath, [...start.nodeArgs.slice(0, -1), path.join(import.meta.dirname, 'argon2-bound.ts')]);
  return JSON.parse(execFileSync(command, args, { encoding: 'utf8', env: { ...process.env, ...start.env } })) as Summary & { concurrency: number; cpuMsPerVerify: number };
}

async function main(): Promise<void> {
  const database = process.env.DATABASE_URL ? 'postgres' : 'pglite';
  // Enough accounts for every sign-in of the run, SAML, the storm and the comparison included (each signs in once).
  const seeded = await seed({ people: WARM_UP + SIGNINS * 5 + C * SECONDS * 4 + ROUND_SIGNINS * 2 + 3, databaseUrl: process.env.DATABASE_URL });
  const pair = await startPair(seeded, plan, { profileDir: values.profile ? path.resolve(values.out!, 'profiles') : undefined });
  const [akamon] = pair.sides;
  const { server } = akamon;
  pinSelf(plan.generator);
  const pid = server.process.pid!;
  const { url } = server;
  const accounts = [...seeded.accounts];
  const results: Record<string, unknown> = {};
  let measured: TargetInputs | undefined;
  try {
    // b. The physical bound: argon2id verifications alone, at the server's parameters and hash concurrency.
    const bound = argon2Bound();

    // a. Full sign-ins with C concurrent people, in the steady state as the bound is: the first
    // sign-ins after start (unmeasured) meet the libraries still loading in the background and pay
    // for compiling the hot code, which V8 goes on optimising for the first several hundred
    // (server CPU per sign-in falls by a third over them); what they cost is reported apart.
    const { summary: warmUp, ...warmUpCost } = await meter(akamon, () => load({ concurrency: C, count: WARM_UP }, async () => (await signIn(url, seeded.client, accounts.pop()!)) !== undefined));
    const tokens: Tokens[] = [];
    const { summary: signins, ...signinCost } = await meter(akamon, () =>
      load({ concurrency: C, count: SIGNINS }, async () => {
        const result = await signIn(url, seeded.client, accounts.pop()!);
        if (result) tokens.push(result);
        return result !== undefined;
      }),
    );
    const cpuPerSignin = signinCost.serverMs / 1000;

    // a2. The same number of SAML sign-ins, the same steps on Akamon's pages; the SP's check of each answer comes after.
    const sp = await samlSp(url, seeded.sp);
    const samlCpuBefore = cpuSeconds(pid);
    const saml = await load({ concurrency: C, count: SIGNINS }, () => sp.signIn(accounts.pop()!));
    const cpuPerSaml = (cpuSeconds(pid) - samlCpuBefore) / Math.max(1, saml.count);
    const checked = await sp.check();

    // c. Token endpoints and metadata.
    const refresh = await load({ concurrency: C, seconds: SECONDS }, refresher(url, seeded.client, tokens));
    const clientCredentials = await load({ concurrency: C, seconds: SECONDS / 2 }, async () => (await tokenRequest(url, seeded.service, { grant_type: 'client_credentials' })).status === 200);
    const discovery = await load({ concurrency: 32, seconds: SECONDS / 2 }, () => get(`${url}/.well-known/openid-configuration`));
    const jwks = await load({ concurrency: 32, seconds: SECONDS / 2 }, () => get(`${url}/jwks`));
    const userinfo = await load({ concurrency: C, seconds: SECONDS / 2 }, (i) => get(`${url}/me`, { authorization: `Bearer ${tokens[i % tokens.length]!.accessToken}` }));
    const introspection = await load({ concurrency: C, seconds: SECONDS / 2 }, async (i) => {
      const answer = await call(`${url}/token/introspection`, { headers: { authorization: basic(seeded.client) }, form: { token: tokens[i % tokens.length]!.accessToken } });
      return answer.status === 200 && (JSON.parse(answer.text) as { active?: boolean }).active === true;
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
        inflight.push(
          (async () => {
            const browser = new Browser(url);
            const passwordPage = await toPasswordPage(url, seeded.client, account, browser);
            // Turned away means: the password was sent and the busy page came back.
            const t0 = performance.now();
            const page = await submitPassword(browser, passwordPage);
            stormStatuses.set(page.status, (stormStatuses.get(page.status) ?? 0) + 1);
            if (page.status === 503) turnedAway.push(performance.now() - t0);
          })().catch(() => {
            stormStatuses.set(0, (stormStatuses.get(0) ?? 0) + 1);
          }),
        );
      }
      await Promise.all(inflight);
    })();
    const refreshUnderStorm = await load({ concurrency: C, seconds: SECONDS }, refresher(url, seeded.client, tokens));
    await storm;
    const sortedAway = turnedAway.sort((a, b) => a - b);

    // e. Akamon beside the baseline, operation by operation, in interleaved rounds.
    const comparison = await compare(pair.sides, seeded, accounts, {
      rounds: Number(values.rounds),
      concurrency: C,
      signins: ROUND_SIGNINS,
      warmUpSignins: WARM_UP,
      seconds: Number(values['round-seconds']),
      hashMs: bound.cpuMsPerVerify,
    });
    const ratioToBound = Math.round((signins.perSecond / bound.perSecond) * 100) / 100;
    measured = {
      comparison,
      database,
      fullSigninToBound: ratioToBound,
      fullSigninHashShare: Math.round((bound.cpuMsPerVerify / signinCost.serverMs) * 100) / 100,
      peakRssMiB: peakRssMiB(pid),
      readyMs: server.readyMs,
    };

    Object.assign(results, {
      machine: {
        cores: machineCores,
        serverCores: plan.serverCores,
        serverCpus: plan.server ?? 'all',
        generatorCpus: plan.generator ?? 'all',
        node: process.version,
        database,
        platform: `${os.type()} ${os.release()}`,
      },
      parameters: { argon2: argonParams, concurrency: C, signins: SIGNINS, seconds: SECONDS },
      argon2Bound: bound,
      signin: {
        ...signins,
        cpuSecondsPerSignin: Math.round(cpuPerSignin * 1000) / 1000,
        ratioToBound,
        // CPU ms of one sign-in: its one argon2id verification, the rest of the server, PostgreSQL's backends (0 on PGlite, inside the server).
        cpuMs: { hashing: bound.cpuMsPerVerify, akamon: Math.round((signinCost.serverMs - bound.cpuMsPerVerify) * 100) / 100, database: signinCost.databaseMs },
        statements: signinCost.statements,
        // The unmeasured first sign-ins after start: how many, and the server's CPU ms each.
        warmUp: { count: warmUp.count, errors: warmUp.errors, serverMs: warmUpCost.serverMs },
      },
      samlSignin: {
        ...saml,
        cpuSecondsPerSignin: Math.round(cpuPerSaml * 1000) / 1000,
        toOidc: { perSecond: ratio(saml.perSecond, signins.perSecond), p50: ratio(saml.p50, signins.p50), cpuSeconds: ratio(cpuPerSaml, cpuPerSignin) },
        sp: checked,
      },
      refresh,
      clientCredentials,
      discovery,
      jwks,
      userinfo,
      introspection,
      storm: {
        attemptsPerSecond: Math.round(stormRate * 10) / 10,
        statuses: Object.fromEntries(stormStatuses),
        turnedAwayP50: sortedAway.length ? Math.round(sortedAway[Math.floor(sortedAway.length / 2)]!) : null,
        refresh: refreshUnderStorm,
        refreshP99Ratio: refresh.p99 ? Math.round((refreshUnderStorm.p99 / refresh.p99) * 100) / 100 : null,
        otherServerErrors: [...stormStatuses].filter(([status]) => status >= 500 && status !== 503).reduce((n, [, count]) => n + count, 0),
      },
      peakRssMiB: measured.peakRssMiB,
      readyMs: server.readyMs,
      comparison,
      targets: targets(measured),
    });
  } finally {
    await pair.stop();
    await seeded.cleanup();
  }
  fs.mkdirSync(values.out!, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(values.out!, `${stamp}-${database}.json`), `${JSON.stringify(results, null, 2)}\n`);
  const table = `${markdown(results as never)}\n${comparisonMarkdown(measured!)}`;
  fs.writeFileSync(path.join(values.out!, `${stamp}-${database}.md`), table);
  process.stdout.write(table);
}

function markdown(r: {
  machine: { cores: number; serverCores: number; serverCpus: string; generatorCpus: string; database: string; node: string };
  parameters: { argon2: { memoryCost: number; timeCost: number; parallelism: number }; concurrency: number };
  argon2Bound: Summary;
  signin: Summary & {
    cpuSecondsPerSignin: number;
    ratioToBound: number;
    cpuMs: { hashing: number; akamon: number; database: number };
    statements: number;
    warmUp: { count: number; errors: number; serverMs: number };
  };
  samlSignin: Summary & { cpuSecondsPerSignin: number; toOidc: { perSecond: number; p50: number; cpuSeconds: number }; sp: { valid: number; invalid: number; msEach: number; firstRefusal?: string } };
  refresh: Summary;
  clientCredentials: Summary;
  discovery: Summary;
  jwks: Summary;
  userinfo: Summary;
  introspection: Summary;
  storm: { attemptsPerSecond: number; statuses: Record<string, number>; turnedAwayP50: number | null; refresh: Summary; refreshP99Ratio: number | null; otherServerErrors: number };
  peakRssMiB: number;
  readyMs: number;
}): string {
  const row = (name: string, s: Summary, note = '') => `| ${name} | ${s.perSecond} | ${(s.perSecond / r.machine.serverCores).toFixed(1)} | ${s.p50} | ${s.p95} | ${s.p99} | ${s.errors} | ${note} |`;
  return [
    `Akamon benchmark: ${r.machine.cores} cores (server on CPU ${r.machine.serverCpus}, load generator on CPU ${r.machine.generatorCpus}), ${r.machine.database}, Node ${r.machine.node}, argon2id m=${r.parameters.argon2.memoryCost} KiB t=${r.parameters.argon2.timeCost} p=${r.parameters.argon2.parallelism}, concurrency ${r.parameters.concurrency}`,
    '',
    '| measure | per second | per server core | p50 ms | p95 ms | p99 ms | errors | note |',
    '|---|---|---|---|---|---|---|---|',
    row('argon2id verify (bound)', r.argon2Bound),
    row(
      'full sign-in (password + TOTP)',
      r.signin,
      `${r.signin.ratioToBound} of bound; ${r.signin.cpuSecondsPerSignin} CPU s each; after ${r.signin.warmUp.count} unmeasured sign-ins (${r.signin.warmUp.errors} errors), ${r.signin.warmUp.serverMs} server CPU ms each`,
    ),
    row(
      'SAML sign-in (password + TOTP)',
      r.samlSignin,
      `to the OIDC sign-in: rate ${r.samlSignin.toOidc.perSecond}×, p50 ${r.samlSignin.toOidc.p50}×, CPU ${r.samlSignin.toOidc.cpuSeconds}×; ${r.samlSignin.cpuSecondsPerSignin} CPU s each; ${r.samlSignin.sp.valid} of ${r.samlSignin.sp.valid + r.samlSignin.sp.invalid} assertions valid at the SP (checked after the run, ${r.samlSignin.sp.msEach} ms each, untimed)${r.samlSignin.sp.firstRefusal ? `; the SP refused: ${r.samlSignin.sp.firstRefusal}` : ''}`,
    ),
    row('refresh grant (rotation)', r.refresh),
    row('client-credentials grant', r.clientCredentials),
    row('discovery', r.discovery),
    row('JWKS', r.jwks),
    row('userinfo', r.userinfo),
    row('introspection', r.introspection),
    row(
      'refresh during a login storm',
      r.storm.refresh,
      `p99 ${r.storm.refreshP99Ratio}× alone; storm ${r.storm.attemptsPerSecond}/s, statuses ${JSON.stringify(r.storm.statuses)}, turned away in ${r.storm.turnedAwayP50} ms (p50), other 5xx ${r.storm.otherServerErrors}`,
    ),
    '',
    `Full sign-in (password + TOTP): ${r.signin.cpuMs.hashing} CPU ms hashing, ${r.signin.cpuMs.akamon} Akamon${r.machine.database === 'pglite' ? ' (PGlite inside)' : `, ${r.signin.cpuMs.database} PostgreSQL`}; ${r.signin.statements} statements.`,
    '',
    `Peak server RSS ${r.peakRssMiB} MiB; ready ${r.readyMs} ms after start.`,
    '',
  ].join('\n');
}

if (values.scale) {
  const rows = Number(values.scale);
  if (!Number.isInteger(rows) || rows < 1 || rows > 100_000_000) {
    process.stderr.write(`bench: --scale must be a whole number of rows from 1 to 100000000, got "${values.scale}"\n`);
    process.exit(2);
  }
  process.stdout.write(await runScale({ rows, concurrency: C, signins: SIGNINS, seconds: SECONDS, plan, out: values.out! }));
} else {
  await main();
}
