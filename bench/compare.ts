import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openDatabase, type Database } from '../src/db/database.ts';
import { Browser } from '../test/support/browser.ts';
import { parseExposition, seriesValue } from '../test/support/prometheus-text.ts';
import { baselineSteps, basic, call, credentialSteps, MeteredBrowser, passwordSteps, refresher, signIn, tokenRequest, type Charges, type Steps, type Tokens } from './client.ts';
import type { CpuPlan } from './cpus.ts';
import { load, runNanoseconds, threadNanoseconds, type Summary } from './measure.ts';
import { freePort, startServer, type BenchAccount, type Seeded, type Server } from './setup.ts';

// Akamon beside the baseline (bench/baseline/server.ts: oidc-provider with Akamon's adapter, keys
// and client rows, none of Akamon's steps), in one run, on the same database, on the same CPUs:
// CPU per operation of each server and of its PostgreSQL backends, statements per operation, and
// the ratios the targets of issue 15 are stated in.

/** One of the two servers, with what the bench reads of it. */
export interface Side {
  name: 'akamon' | 'baseline';
  server: Server;
  /** Its statements sent so far (akamon_db_queries_total on its metrics listener). */
  statements(): Promise<number>;
  /** CPU nanoseconds its PostgreSQL backends have run so far, by backend pid (empty on PGlite, which runs inside the server). */
  backends(): Promise<Map<number, number>>;
}

/** What one measured window cost per operation. */
export interface Cost {
  count: number;
  errors: number;
  perSecond: number;
  /** CPU ms of the server process (all its threads, PGlite and hashing included). */
  serverMs: number;
  /**
   * Of that, the CPU ms of its libuv threadpool, where argon2 hashes (and WebCrypto signs): what the
   * password sign-in's "outside hashing" leaves out, measured in the same window as the rest.
   */
  poolMs: number;
  /** CPU ms of its PostgreSQL backends (0 on PGlite). */
  databaseMs: number;
  statements: number;
}

const round2 = (n: number) => Math.round(n * 100) / 100;
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Nanoseconds the process has run so far: all its threads, and its libuv threadpool (one read of /proc). */
function cpuSoFar(pid: number): { all: number; pool: number } {
  const threads = threadNanoseconds(pid);
  return { all: [...threads.values()].reduce((sum, n) => sum + n, 0), pool: threads.get('libuv-worker') ?? 0 };
}

/** Runs `work` and charges the servers' and their backends' CPU and the statements to its operations. */
export async function meter(side: Side, work: () => Promise<Summary>): Promise<Cost & { summary: Summary }> {
  const pid = side.server.process.pid!;
  const statements = await side.statements();
  const backends = await side.backends();
  const cpu = cpuSoFar(pid);
  const summary = await work();
  const cpuAfter = cpuSoFar(pid);
  const serverNs = cpuAfter.all - cpu.all;
  const poolNs = cpuAfter.pool - cpu.pool;
  const backendsAfter = await side.backends();
  const statementsAfter = await side.statements();
  // A backend that began inside the window ran all its time there; one that ended took its time along.
  const databaseNs = [...backendsAfter].reduce((sum, [backend, ns]) => sum + ns - (backends.get(backend) ?? 0), 0);
  const count = Math.max(1, summary.count);
  return {
    summary,
    count: summary.count,
    errors: summary.errors,
    perSecond: summary.perSecond,
    serverMs: round2(serverNs / 1e6 / count),
    poolMs: round2(poolNs / 1e6 / count),
    databaseMs: round2(databaseNs / 1e6 / count),
    statements: round2((statementsAfter - statements) / count),
  };
}

/** akamon_db_queries_total of a metrics listener; it starts just after the ready line, so the first reads may wait. */
function statementReader(port: number): () => Promise<number> {
  return async () => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const answer = await call(`http://127.0.0.1:${port}/metrics`);
        if (answer.status === 200) return seriesValue(parseExposition(answer.text), 'akamon_db_queries_total');
      } catch (error) {
        if (attempt > 50) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
}

/**
 * The backends of the bench's database serving one server, told apart by the application_name its
 * pool sets (PGAPPNAME), and their CPU from the scheduler (/proc/<pid>/schedstat: nanoseconds,
 * finer than the 10 ms ticks of /proc/<pid>/stat). The bench's own connection is not among them.
 */
function backendReader(monitor: Database | undefined, database: string, application: string): () => Promise<Map<number, number>> {
  return async () => {
    if (!monitor) return new Map();
    const { rows } = await sql<{ pid: number }>`select pid from pg_stat_activity where datname = ${database} and application_name = ${application}`.execute(monitor.db);
    const cpu = new Map<number, number>();
    for (const { pid } of rows) {
      try {
        cpu.set(pid, runNanoseconds(pid));
      } catch {
        // A backend that ended between the listing and the read.
      }
    }
    return cpu;
  };
}

/**
 * Starts Akamon (as `npm start`, on the server's CPUs, with its metrics listener) and the baseline
 * (the same node flags and CPUs) on the seeded database. PGlite is one process's database: the
 * baseline gets a copy of the seeded data directory, made before Akamon opens it.
 */
export async function startPair(seeded: Seeded, plan: CpuPlan, options: { profileDir?: string; nodeFlags?: string[] } = {}): Promise<{ sides: [Side, Side]; stop(): Promise<void> }> {
  const postgres = seeded.env.DATABASE_URL;
  const copy = postgres ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'akamon-bench-baseline-'));
  if (copy) fs.cpSync(seeded.env.AKAMON_DATA_DIR!, copy, { recursive: true });
  const monitor = postgres ? await openDatabase({ url: postgres, poolMax: 1 }) : undefined;
  const databaseName = postgres ? new URL(postgres).pathname.slice(1) : '';
  const side = async (name: Side['name'], env: Record<string, string>, entry?: string): Promise<Side> => {
    const metricsPort = await freePort();
    const server = await startServer(
      { ...env, AKAMON_METRICS_PORT: String(metricsPort), PGAPPNAME: `bench-${name}` },
      { cpus: plan.server, entry, profileDir: name === 'akamon' ? options.profileDir : undefined, nodeFlags: options.nodeFlags },
    );
    return { name, server, statements: statementReader(metricsPort), backends: backendReader(monitor, databaseName, `bench-${name}`) };
  };
  const akamon = await side('akamon', seeded.env);
  const port = await freePort();
  const baselineEnv = { ...seeded.env, PORT: String(port), AKAMON_ISSUER: `http://127.0.0.1:${port}`, ...(copy ? { AKAMON_DATA_DIR: copy } : {}) };
  let baseline: Side;
  try {
    baseline = await side('baseline', baselineEnv, 'bench/baseline/server.ts');
  } catch (error) {
    await akamon.server.stop();
    throw error;
  }
  return {
    sides: [akamon, baseline],
    async stop() {
      await Promise.all([akamon.server.stop(), baseline.server.stop()]);
      await monitor?.close();
      if (copy) fs.rmSync(copy, { recursive: true, force: true });
    },
  };
}

export interface ComparisonOptions {
  rounds: number;
  concurrency: number;
  /** Password sign-ins per server and round. */
  signins: number;
  /** Unmeasured password sign-ins per server before the rounds, so that both are in the steady state. */
  warmUpSignins: number;
  /** Seconds per server and round for each token endpoint. */
  seconds: number;
  /** CPU ms of one argon2id verification at the server's parameters (bench/argon2-bound.ts). */
  hashMs: number;
}

const OPERATIONS = ['password sign-in', 'refresh grant', 'client credentials', 'userinfo', 'introspection'] as const;
type Operation = (typeof OPERATIONS)[number];

/** Medians over the rounds, per side and operation. */
export type Comparison = Record<Operation, Record<Side['name'], Cost>> & {
  rounds: number;
  hashMs: number;
  /** Every round's figures, by "operation|server": how far the rounds were apart. */
  samples: Record<string, Cost[]>;
  /** Requests and statements per sign-in, by request (from sign-ins made one at a time). */
  signinRequests: Record<string, { requests: number; statementsPerSignin: number; byRoute: Record<string, { requests: number; statements: number }> }>;
};

/** Requests and statements of `count` sign-ins made one at a time, by route (token and userinfo go by the relying party's own client). */
async function meteredSignIns(side: Side, client: Seeded['client'], accounts: BenchAccount[], steps: Steps) {
  const charges: Charges = new Map();
  const before = await side.statements();
  for (const account of accounts) {
    if (!(await signIn(side.server.url, client, account, new MeteredBrowser(side.server.url, side.statements, charges), steps))) throw new Error(`${side.name}: a metered sign-in failed`);
  }
  const total = (await side.statements()) - before;
  const n = accounts.length;
  const browserRequests = [...charges.values()].reduce((sum, c) => sum + c.count, 0);
  const browserStatements = [...charges.values()].reduce((sum, c) => sum + c.amount, 0);
  const byRoute = Object.fromEntries([...charges].map(([route, c]) => [route, { requests: round2(c.count / n), statements: round2(c.amount / c.count) }]));
  byRoute['POST /token + GET /me'] = { requests: 2, statements: round2((total - browserStatements) / n / 2) };
  return { requests: round2(browserRequests / n + 2), statementsPerSignin: round2(total / n), byRoute };
}

/**
 * The comparison proper: `rounds` rounds, each measuring every operation on one server and then
 * the other (the order swapped each round), so both meet the same minutes of a noisy machine.
 * `accounts`: for the password sign-ins (reused: a password may be shown any number of times) and,
 * three of them, for the metered full sign-in (taken: a TOTP code counts once).
 */
export async function compare(sides: [Side, Side], seeded: Seeded, accounts: BenchAccount[], options: ComparisonOptions): Promise<Comparison> {
  const [akamon, baseline] = sides;
  const pool = accounts.splice(0, Math.min(accounts.length, options.signins));
  const tokens = new Map<Side['name'], Tokens[]>([
    ['akamon', []],
    ['baseline', []],
  ]);
  const work = (side: Side, operation: Operation, size = { signins: options.signins, seconds: options.seconds }): (() => Promise<Summary>) => {
    const { url } = side.server;
    // The relying party without MFA: its sign-in on Akamon is the identifier and password steps alone.
    const client = seeded.passwordClient;
    const steps = side.name === 'akamon' ? passwordSteps : baselineSteps;
    const issued = tokens.get(side.name)!;
    const seconds = { concurrency: options.concurrency, seconds: size.seconds };
    switch (operation) {
      case 'password sign-in':
        return () =>
          load({ concurrency: options.concurrency, count: size.signins }, async (i) => {
            const result = await signIn(url, client, pool[i % pool.length]!, new Browser(url), steps);
            if (result) issued.push(result);
            return result !== undefined;
          });
      case 'refresh grant':
        return () => load(seconds, refresher(url, client, issued));
      case 'client credentials':
        return () => load(seconds, async () => (await tokenRequest(url, seeded.service, { grant_type: 'client_credentials' })).status === 200);
      case 'userinfo':
        return () => load(seconds, async (i) => (await call(`${url}/me`, { headers: { authorization: `Bearer ${issued[i % issued.length]!.accessToken}` } })).status === 200);
      case 'introspection':
        return () =>
          load(seconds, async (i) => {
            const answer = await call(`${url}/token/introspection`, { headers: { authorization: basic(client) }, form: { token: issued[i % issued.length]!.accessToken } });
            return answer.status === 200 && (JSON.parse(answer.text) as { active?: boolean }).active === true;
          });
    }
  };
  // Unmeasured first: the baseline starts cold (Akamon has served the rest of the bench by now) and
  // needs as many sign-ins as Akamon had to reach its steady state; an account's first sign-in costs
  // Akamon more statements than its next ones, so every account of the pool signs in on each side
  // before anything is measured.
  const warmUp = { signins: Math.max(pool.length, options.warmUpSignins), seconds: Math.min(1, options.seconds) };
  for (const side of sides) for (const operation of OPERATIONS) await work(side, operation, warmUp)();
  const signinRequests = {
    'Akamon, password + TOTP': await meteredSignIns(akamon, seeded.client, accounts.splice(0, 3), credentialSteps),
    'Akamon, password': await meteredSignIns(akamon, seeded.passwordClient, pool.slice(0, 3), passwordSteps),
    baseline: await meteredSignIns(baseline, seeded.passwordClient, pool.slice(0, 3), baselineSteps),
  };
  const costs = new Map<string, Cost[]>();
  for (let round = 0; round < options.rounds; round += 1) {
    const order = round % 2 === 0 ? [akamon, baseline] : [baseline, akamon];
    for (const operation of OPERATIONS) {
      for (const side of order) {
        const { summary: _, ...cost } = await meter(side, work(side, operation));
        const key = `${operation}|${side.name}`;
        costs.set(key, [...(costs.get(key) ?? []), cost]);
      }
    }
  }
  const medians = Object.fromEntries(
    OPERATIONS.map((operation) => [
      operation,
      Object.fromEntries(
        sides.map((side) => {
          const all = costs.get(`${operation}|${side.name}`)!;
          const of = (field: keyof Cost) => round2(median(all.map((c) => c[field])));
          return [
            side.name,
            {
              count: of('count'),
              errors: all.reduce((n, c) => n + c.errors, 0),
              perSecond: of('perSecond'),
              serverMs: of('serverMs'),
              poolMs: of('poolMs'),
              databaseMs: of('databaseMs'),
              statements: of('statements'),
            },
          ];
        }),
      ),
    ]),
  ) as Record<Operation, Record<Side['name'], Cost>>;
  return { ...medians, rounds: options.rounds, hashMs: options.hashMs, signinRequests, samples: Object.fromEntries(costs) };
}

export interface TargetInputs {
  comparison: Comparison;
  database: 'postgres' | 'pglite';
  /** The full sign-in's rate over the argon2 bound's, both on the server's cores. */
  fullSigninToBound: number;
  /**
   * The same from CPU, which a noisy machine moves far less than rates measured minutes apart: one
   * verification's CPU over the server's CPU per full sign-in, the ratio a saturated server core reaches.
   */
  fullSigninHashShare: number;
  peakRssMiB: number;
  readyMs: number;
}

/**
 * A sign-in's CPU outside its hashing: the server's outside its libuv threadpool, and the database's.
 * Measured in the window itself rather than as the total less one verification measured apart, whose
 * cost moves with the machine between the two measures by as much as the difference sought.
 */
const outsideHashing = (cost: Cost) => cost.serverMs - cost.poolMs + cost.databaseMs;

/** The targets of issue 15, each with what this run measured and whether it is met. */
export function targets(t: TargetInputs): Array<{ target: string; measured: number | null; bound: string; met: boolean | null }> {
  const c = t.comparison;
  const total = (cost: Cost) => cost.serverMs + cost.databaseMs;
  const cpuRatio = (operation: Operation) => round2(total(c[operation].akamon) / total(c[operation].baseline));
  const outside = (side: Side['name']) => outsideHashing(c['password sign-in'][side]);
  const at = (target: string, measured: number | null, limit: number, sense: '<=' | '>=') => ({
    target,
    measured,
    bound: `${sense === '<=' ? '≤' : '≥'} ${limit}`,
    met: measured === null ? null : sense === '<=' ? measured <= limit : measured >= limit,
  });
  const embedded = t.database === 'pglite';
  return [
    at('password sign-in CPU outside hashing (server + database), Akamon / baseline', round2(outside('akamon') / outside('baseline')), 1.3, '<='),
    at('full sign-in (password + TOTP) rate / argon2 bound, per server core', t.fullSigninToBound, 0.6, '>='),
    at('the same from CPU: one hash / server CPU per full sign-in', t.fullSigninHashShare, 0.6, '>='),
    at('refresh grant CPU, Akamon / baseline', cpuRatio('refresh grant'), 1.15, '<='),
    at('refresh grant rate, Akamon / baseline', round2(c['refresh grant'].akamon.perSecond / c['refresh grant'].baseline.perSecond), 0.9, '>='),
    at('client credentials CPU, Akamon / baseline', cpuRatio('client credentials'), 1.2, '<='),
    at('userinfo CPU, Akamon / baseline', cpuRatio('userinfo'), 1.2, '<='),
    at('introspection CPU, Akamon / baseline', cpuRatio('introspection'), 1.2, '<='),
    at('PGlite peak RSS under the bench (MiB)', embedded ? t.peakRssMiB : null, 384, '<='),
    at('PGlite ready after start (ms)', embedded ? t.readyMs : null, 2000, '<='),
  ];
}

/** The comparison and the targets as Markdown. */
export function comparisonMarkdown(t: TargetInputs): string {
  const c = t.comparison;
  const db = t.database === 'postgres' ? 'PostgreSQL backends' : 'in the server (PGlite)';
  const rows = OPERATIONS.flatMap((operation) =>
    (['akamon', 'baseline'] as const).map((name) => {
      const cost = c[operation][name];
      const outside = operation === 'password sign-in' ? ` (${round2(outsideHashing(cost))} outside hashing; hashing threads ${cost.poolMs})` : '';
      return `| ${operation} | ${name} | ${cost.serverMs} | ${t.database === 'postgres' ? cost.databaseMs : '—'} | ${round2(cost.serverMs + cost.databaseMs)}${outside} | ${cost.statements} | ${cost.perSecond} | ${cost.errors} |`;
    }),
  );
  const requests = Object.entries(c.signinRequests).map(
    ([name, r]) =>
      `| ${name} | ${r.requests} | ${r.statementsPerSignin} | ${Object.entries(r.byRoute)
        .map(([route, x]) => `${route} ×${x.requests}: ${x.statements}`)
        .join('; ')} |`,
  );
  return [
    `Akamon beside the baseline (oidc-provider with Akamon's adapter, keys and clients, none of Akamon's steps), medians of ${c.rounds} interleaved rounds; database CPU: ${db}; one argon2id verification: ${c.hashMs} CPU ms`,
    '',
    '| operation | server | server CPU ms | database CPU ms | total CPU ms | statements | per second | errors |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '| sign-in | requests | statements | statements per request, by request |',
    '|---|---|---|---|',
    ...requests,
    '',
    '| target (issue 15) | measured | target | |',
    '|---|---|---|---|',
    ...targets(t).map((x) => `| ${x.target} | ${x.measured ?? '—'} | ${x.bound} | ${x.met === null ? 'PGlite only' : x.met ? 'met' : 'short'} |`),
    '',
    // What the hash-share target asks, set beside the bare engine: the same measure for its own sign-in.
    `For scale: one hash / server CPU for the baseline's own password sign-in (${c.signinRequests.baseline?.requests ?? '?'} requests, no second factor): ${c['password sign-in'].baseline.serverMs > 0 ? round2(c.hashMs / c['password sign-in'].baseline.serverMs) : '—'}.`,
    '',
  ].join('\n');
}
