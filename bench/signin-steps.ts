import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { baselineSteps, basic, call, MeteredBrowser, passwordSteps, signIn, type Charges, type Tokens } from './client.ts';
import { startPair } from './compare.ts';
import { cpuPlan, pinSelf } from './cpus.ts';
import { mainThreadUserSystem, runNanoseconds, threadNanoseconds } from './measure.ts';
import { seed, startServer } from './setup.ts';

// node bench/signin-steps.ts [--signins N] [--warm-up N] [--profile DIR]: where a sign-in's server CPU
// goes, request by request, and what one request to each token and metadata endpoint costs, after
// N unmeasured sign-ins (1,000: the steady state, as in `npm run bench`).
// Sign-ins run one at a time, so every CPU nanosecond the server spends between a request and its
// answer belongs to that request. On PGlite the database's work counts too; on Postgres it does not.
//
// --beside-baseline: the password sign-in (no second factor) on Akamon and on the bench's baseline
// (bench/baseline/server.ts), one after the other, request by request and thread by thread, with
// the CPU of the hashing threads left out: where the "outside hashing" ratio of issue 15 comes from.

const { values } = parseArgs({
  options: {
    signins: { type: 'string', default: '100' },
    'warm-up': { type: 'string', default: '1000' },
    profile: { type: 'string' },
    'beside-baseline': { type: 'boolean', default: false },
    perf: { type: 'string' },
  },
});
const count = Number(values.signins);
const warmUp = Number(values['warm-up']);
const plan = cpuPlan();
const seeded = await seed({ people: warmUp + count, databaseUrl: process.env.DATABASE_URL });
if (values['beside-baseline']) {
  await besideBaseline();
  process.exit(0);
}
const server = await startServer(seeded.env, { cpus: plan.server, profileDir: values.profile });
pinSelf(plan.generator);
const pid = server.process.pid!;
// Server CPU nanoseconds by request.
const perStep: Charges = new Map();

try {
  for (const account of seeded.accounts.slice(count, count + warmUp)) if (!(await signIn(server.url, seeded.client, account))) throw new Error('a sign-in failed');
  let total = 0;
  const threadsBefore = threadNanoseconds(pid);
  const issued: Tokens[] = [];
  for (const account of seeded.accounts.slice(0, count)) {
    const before = runNanoseconds(pid);
    const tokens = await signIn(server.url, seeded.client, account, new MeteredBrowser(server.url, () => runNanoseconds(pid), perStep));
    if (!tokens) throw new Error('a sign-in failed');
    issued.push(tokens);
    total += runNanoseconds(pid) - before;
  }
  const ms = (ns: number) => (ns / 1e6 / count).toFixed(2).padStart(7);
  process.stdout.write(`server CPU per sign-in: ${ms(total)} ms (${process.env.DATABASE_URL ? 'postgres' : 'pglite'}, ${count} sign-ins)\n`);
  for (const [step, { count: n, amount: nanoseconds }] of [...perStep].sort((a, b) => b[1].amount - a[1].amount)) {
    process.stdout.write(`${ms(nanoseconds)} ms  ${(n / count).toFixed(1)}×  ${step}\n`);
  }
  process.stdout.write(`${ms(total - [...perStep.values()].reduce((sum, s) => sum + s.amount, 0))} ms  token and userinfo (undici)\nby thread:\n`);
  for (const [name, nanoseconds] of threadNanoseconds(pid)) process.stdout.write(`${ms(nanoseconds - (threadsBefore.get(name) ?? 0))} ms  ${name}\n`);

  // The endpoints relying parties call, one request at a time, each `count` times.
  const auth = { authorization: basic(seeded.client) };
  const endpoints: Record<string, (tokens: Tokens) => Promise<number>> = {
    'refresh grant': async (tokens) => {
      const answer = await call(`${server.url}/token`, { headers: auth, form: { grant_type: 'refresh_token', refresh_token: tokens.refreshToken } });
      if (answer.status === 200) Object.assign(tokens, { refreshToken: JSON.parse(answer.text).refresh_token, accessToken: JSON.parse(answer.text).access_token });
      return answer.status;
    },
    userinfo: async (tokens) => (await call(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.accessToken}` } })).status,
    introspection: async (tokens) => (await call(`${server.url}/token/introspection`, { headers: auth, form: { token: tokens.accessToken } })).status,
    'client credentials': async () => (await call(`${server.url}/token`, { headers: { authorization: basic(seeded.service) }, form: { grant_type: 'client_credentials' } })).status,
    discovery: async () => (await call(`${server.url}/.well-known/openid-configuration`)).status,
    JWKS: async () => (await call(`${server.url}/jwks`)).status,
  };
  process.stdout.write('per request:\n');
  for (const [name, send] of Object.entries(endpoints)) {
    const before = runNanoseconds(pid);
    for (const tokens of issued) if ((await send(tokens)) !== 200) throw new Error(`${name} failed`);
    process.stdout.write(`${ms(runNanoseconds(pid) - before)} ms  ${name}\n`);
  }
} finally {
  await server.stop();
  await seeded.cleanup();
}

/** CPU nanoseconds of a server outside its libuv threadpool (where argon2 hashes). */
function outsidePool(pid: number): number {
  let sum = 0;
  for (const [name, ns] of threadNanoseconds(pid)) if (name !== 'libuv-worker') sum += ns;
  return sum;
}

async function besideBaseline(): Promise<void> {
  // --perf DIR: Linux perf samples both servers' threads with their call stacks (JavaScript frames named) over the measured sign-ins, into DIR/akamon.data and DIR/baseline.data.
  const pair = await startPair(seeded, plan, { profileDir: values.profile, nodeFlags: values.perf ? ['--perf-basic-prof', '--interpreted-frames-native-stack'] : [] });
  let recorders: ChildProcess[] = [];
  pinSelf(plan.generator);
  const sides = pair.sides.map((side) => ({
    side,
    steps: side.name === 'akamon' ? passwordSteps : baselineSteps,
    charges: new Map() as Charges,
    threads: new Map<string, number>(),
    database: 0,
    user: 0,
    system: 0,
  }));
  const ms = (ns: number) => (ns / 1e6 / count).toFixed(2).padStart(7);
  try {
    // An account's first sign-in costs Akamon more statements than its next ones: the measured accounts sign in during the warm-up too.
    for (const { side, steps } of sides) {
      for (const account of seeded.accounts.slice(0, warmUp + count)) {
        if (!(await signIn(side.server.url, seeded.passwordClient, account, undefined, steps))) throw new Error(`${side.name}: a sign-in failed`);
      }
    }
    if (values.perf) {
      fs.mkdirSync(values.perf, { recursive: true });
      recorders = pair.sides.map((side) =>
        spawn('perf', ['record', '-q', '-g', '-F', '1999', '-p', String(side.server.process.pid), '-o', path.join(values.perf!, `${side.name}.data`)], { stdio: 'ignore' }),
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    if (values.profile) process.stdout.write(`measured from ${process.hrtime.bigint() / 1000n} us (bench/profile-summary.ts --since-us)\n`);
    for (const account of seeded.accounts.slice(0, count)) {
      for (const entry of sides) {
        const pid = entry.side.server.process.pid!;
        const threads = threadNanoseconds(pid);
        const modes = mainThreadUserSystem(pid);
        const backends = await entry.side.backends();
        const browser = new MeteredBrowser(entry.side.server.url, () => outsidePool(pid), entry.charges);
        if (!(await signIn(entry.side.server.url, seeded.passwordClient, account, browser, entry.steps))) throw new Error(`${entry.side.name}: a sign-in failed`);
        // The relying party's token and userinfo requests go by another client: charged as what the browser's requests leave.
        for (const [name, ns] of threadNanoseconds(pid)) entry.threads.set(name, (entry.threads.get(name) ?? 0) + ns - (threads.get(name) ?? 0));
        for (const [backend, ns] of await entry.side.backends()) entry.database += ns - (backends.get(backend) ?? 0);
        const modesAfter = mainThreadUserSystem(pid);
        entry.user += modesAfter.user - modes.user;
        entry.system += modesAfter.system - modes.system;
      }
    }
    await Promise.all(recorders.map((recorder) => new Promise((resolve) => recorder.once('exit', resolve).kill('SIGINT'))));
    for (const { side, charges, threads, database, user, system } of sides) {
      const outside = [...threads].reduce((sum, [name, ns]) => (name === 'libuv-worker' ? sum : sum + ns), 0);
      process.stdout.write(`${side.name}: ${ms(outside + database)} ms per password sign-in outside hashing (server ${ms(outside).trim()}, database ${ms(database).trim()}; ${count} sign-ins)\n`);
      for (const [route, { count: n, amount }] of charges) process.stdout.write(`${ms(amount)} ms  ${(n / count).toFixed(1)}×  ${route}\n`);
      process.stdout.write(`${ms(outside - [...charges.values()].reduce((sum, c) => sum + c.amount, 0))} ms  token and userinfo\nby thread:\n`);
      for (const [name, ns] of threads) process.stdout.write(`${ms(ns)} ms  ${name}\n`);
      process.stdout.write(`main thread: ${ms(user * 1e9)} ms user, ${ms(system * 1e9)} ms kernel (clock ticks)\n`);
    }
  } finally {
    await pair.stop();
    await seeded.cleanup();
  }
}
