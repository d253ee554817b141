import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { openDatabase } from '../src/db/database.ts';
import { tokenWithItsRows } from '../src/oidc/adapter.ts';
import { refresher, signIn, type Tokens } from './client.ts';
import type { CpuPlan } from './cpus.ts';
import { pinSelf } from './cpus.ts';
import { load, type Summary } from './measure.ts';
import { seed, startServer, type Seeded } from './setup.ts';

// npm run bench -- --scale N: sign-in and refresh latency on a small database, then again after
// N accounts (sharing one password hash) and N live sessions are added, on Postgres. Each side is
// measured in ROUNDS rounds and compared by its medians: one round moves by up to 30% on a noisy
// machine, as much as the effect being looked for.

const ROUNDS = 3;

export interface ScaleOptions {
  rows: number;
  concurrency: number;
  signins: number;
  seconds: number;
  plan: CpuPlan;
  out: string;
}

interface Round {
  signin: Summary;
  refresh: Summary;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Each figure the median of the rounds' figures. */
function medianRound(rounds: Round[]): Round {
  const of = (pick: (round: Round) => Summary): Summary => {
    const summaries = rounds.map(pick);
    return Object.fromEntries(Object.keys(summaries[0]!).map((key) => [key, median(summaries.map((s) => s[key as keyof Summary]))])) as unknown as Summary;
  };
  return { signin: of((r) => r.signin), refresh: of((r) => r.refresh) };
}

async function measure(url: string, seeded: Seeded, accounts: Seeded['accounts'], options: ScaleOptions): Promise<Round> {
  const tokens: Tokens[] = [];
  const signin = await load({ concurrency: options.concurrency, count: options.signins }, async () => {
    const result = await signIn(url, seeded.client, accounts.pop()!);
    if (result) tokens.push(result);
    return result !== undefined;
  });
  const refresh = await load({ concurrency: options.concurrency, seconds: options.seconds }, refresher(url, seeded.client, tokens));
  return { signin, refresh };
}

/** N accounts and N sessions, one session each, written by Postgres itself in batches. */
async function fill(databaseUrl: string, rows: number): Promise<number> {
  const started = performance.now();
  const database = await openDatabase({ url: databaseUrl, poolMax: 1 });
  try {
    const { password_hash: hash } = await database.db.selectFrom('account').select('password_hash').limit(1).executeTakeFirstOrThrow();
    const batch = 100_000;
    for (let from = 1; from <= rows; from += batch) {
      const to = Math.min(rows, from + batch - 1);
      await sql`insert into account (common_id, name, affiliation, status, password_hash, password_set_at, must_change_password)
        select (8000000000 + g)::text, 'Filler ' || g, 'student', 'active', ${hash}, now(), false from generate_series(${from}::int, ${to}::int) g`.execute(database.db);
      await sql`insert into oidc_payload (model, id, payload, uid, account_id, expires_at)
        select 'Session', md5('session' || a.common_id), jsonb_build_object('kind', 'Session', 'jti', md5('session' || a.common_id), 'uid', md5('uid' || a.common_id),
          'accountId', a.id::text, 'loginTs', extract(epoch from now())::int, 'iat', extract(epoch from now())::int, 'exp', extract(epoch from now() + interval '14 days')::int),
          md5('uid' || a.common_id), a.id::text, now() + interval '14 days'
        from account a where a.common_id between (8000000000 + ${from}::int)::text and (8000000000 + ${to}::int)::text`.execute(database.db);
      process.stderr.write(`\rfilled ${to} of ${rows}`);
    }
    process.stderr.write('\n');
    // Now, not by autovacuum or the checkpointer during the second round.
    await sql`vacuum (analyze) account, oidc_payload`.execute(database.db);
    await sql`checkpoint`.execute(database.db).catch(() => process.stderr.write('no checkpoint (needs pg_checkpoint): the second round may meet one\n'));
  } finally {
    await database.close();
  }
  return Math.round((performance.now() - started) / 1000);
}

/** The lookups every sign-in and refresh makes, as the server words them; each must use an index at scale. */
const HOT_LOOKUPS: Record<string, string> = {
  'account by Common ID': `select * from account where common_id = '8000500000'`,
  'account by id': `select * from account where id = (select id from account where common_id = '8000500000')`,
  'session by id': `select payload, consumed_at from oidc_payload where model = 'Session' and id = md5('session8000500000') and (expires_at is null or expires_at > now())`,
  'session by uid': `select payload, consumed_at from oidc_payload where model = 'Session' and uid = md5('uid8000500000') and (expires_at is null or expires_at > now())`,
  'second factors': `select * from mfa_factor where account_id = (select id from account where common_id = '8000500000')`,
  'sessions of an account': `select id from oidc_payload where account_id = (select id::text from account where common_id = '8000500000')`,
};

async function plans(databaseUrl: string): Promise<Record<string, string>> {
  const database = await openDatabase({ url: databaseUrl, poolMax: 1 });
  try {
    const result: Record<string, string> = {};
    // The token read of every refresh, userinfo and introspection, exactly as the adapter words it.
    const lookups = { ...HOT_LOOKUPS, 'refresh token with its grant, session and account': tokenWithItsRows('RefreshToken', 'none') };
    for (const [name, query] of Object.entries(lookups)) {
      const { rows } = await sql<{ 'QUERY PLAN': string }>`explain ${typeof query === 'string' ? sql.raw(query) : query}`.execute(database.db);
      result[name] = rows
        .map((r) => r['QUERY PLAN'].trim())
        .filter((line) => /Scan/.test(line))
        .map((line) => line.replace(/^->\s*/, '').replace(/\s+\(cost.*$/, ''))
        .join('; ');
    }
    return result;
  } finally {
    await database.close();
  }
}

export async function runScale(options: ScaleOptions): Promise<string> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error('--scale needs Postgres: set DATABASE_URL');
  const seeded = await seed({ people: options.signins * (1 + 2 * ROUNDS), databaseUrl });
  const server = await startServer(seeded.env, { cpus: options.plan.server });
  pinSelf(options.plan.generator);
  const accounts = [...seeded.accounts];
  let table: string;
  try {
    // A round that only warms up (JIT, pools, caches), so that the order of the rounds does not count.
    await measure(server.url, seeded, accounts, options);
    const rounds = async () => {
      const done: Round[] = [];
      for (let i = 0; i < ROUNDS; i += 1) done.push(await measure(server.url, seeded, accounts, options));
      return done;
    };
    const smallRounds = await rounds();
    const fillSeconds = await fill(seeded.env.DATABASE_URL!, options.rows);
    const largeRounds = await rounds();
    const small = medianRound(smallRounds);
    const large = medianRound(largeRounds);
    const queryPlans = await plans(seeded.env.DATABASE_URL!);
    const ratio = (a: number, b: number) => (b ? Math.round((a / b) * 100) / 100 : null);
    const results = {
      parameters: { rows: options.rows, concurrency: options.concurrency, signins: options.signins, seconds: options.seconds, serverCpus: options.plan.server ?? 'all' },
      fillSeconds,
      small,
      large,
      smallRounds,
      largeRounds,
      queryPlans,
      ratios: {
        signinP50: ratio(large.signin.p50, small.signin.p50),
        signinP95: ratio(large.signin.p95, small.signin.p95),
        refreshP50: ratio(large.refresh.p50, small.refresh.p50),
        refreshP95: ratio(large.refresh.p95, small.refresh.p95),
      },
    };
    const row = (name: string, s: Summary, l: Summary) => `| ${name} | ${s.perSecond} | ${s.p50} | ${s.p95} | ${l.perSecond} | ${l.p50} | ${l.p95} | ${ratio(l.p50, s.p50)} | ${ratio(l.p95, s.p95)} |`;
    table = [
      `Akamon at scale: ${options.rows.toLocaleString('en')} more accounts and live sessions (filled in ${fillSeconds} s), concurrency ${options.concurrency}, medians of ${ROUNDS} rounds each`,
      '',
      '| measure | small /s | small p50 ms | small p95 ms | large /s | large p50 ms | large p95 ms | p50 ratio | p95 ratio |',
      '|---|---|---|---|---|---|---|---|---|',
      row('full sign-in', small.signin, large.signin),
      row('refresh grant', small.refresh, large.refresh),
      '',
      `p50 of each round, small then large: sign-in ${smallRounds.map((r) => r.signin.p50).join(', ')} | ${largeRounds.map((r) => r.signin.p50).join(', ')} ms; refresh ${smallRounds.map((r) => r.refresh.p50).join(', ')} | ${largeRounds.map((r) => r.refresh.p50).join(', ')} ms`,
      '',
      'Plans of the hot lookups at scale:',
      '',
      ...Object.entries(queryPlans).map(([name, plan]) => `- ${name}: ${plan}`),
      '',
    ].join('\n');
    fs.mkdirSync(options.out, { recursive: true });
    const stamp = `${new Date().toISOString().replace(/[:.]/g, '-')}-scale`;
    fs.writeFileSync(path.join(options.out, `${stamp}.json`), `${JSON.stringify(results, null, 2)}\n`);
    fs.writeFileSync(path.join(options.out, `${stamp}.md`), table);
  } finally {
    await server.stop();
    await seeded.cleanup();
  }
  return table;
}
