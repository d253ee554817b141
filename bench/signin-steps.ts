import { parseArgs } from 'node:util';
import { basic, call, MeteredBrowser, signIn, type Charges, type Tokens } from './client.ts';
import { cpuPlan, pinSelf } from './cpus.ts';
import { runNanoseconds, threadNanoseconds } from './measure.ts';
import { seed, startServer } from './setup.ts';

// node bench/signin-steps.ts [--signins N] [--warm-up N] [--profile DIR]: where a sign-in's server CPU
// goes, request by request, and what one request to each token and metadata endpoint costs, after
// N unmeasured sign-ins (1,000: the steady state, as in `npm run bench`).
// Sign-ins run one at a time, so every CPU nanosecond the server spends between a request and its
// answer belongs to that request. On PGlite the database's work counts too; on Postgres it does not.

const { values } = parseArgs({ options: { signins: { type: 'string', default: '100' }, 'warm-up': { type: 'string', default: '1000' }, profile: { type: 'string' } } });
const count = Number(values.signins);
const warmUp = Number(values['warm-up']);
const plan = cpuPlan();
const seeded = await seed({ people: warmUp + count, databaseUrl: process.env.DATABASE_URL });
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
