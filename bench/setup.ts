import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { generate } from 'otplib';
import { loadConfig } from '../src/config/config.ts';
import { buildDeps } from '../src/deps.ts';
import { createLogger } from '../src/shared/logger.ts';
import { openDatabase } from '../src/db/database.ts';
import { ClientService } from '../src/client/client.service.ts';
import { readSpMetadata } from '../src/saml/sp-metadata.ts';
import { onCpus } from './cpus.ts';
import { benchSp, type BenchSp } from './saml.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const PASSWORD = 'Bench-Password-2026!';
export const REDIRECT_URI = 'http://127.0.0.1:9/bench/callback';

export interface BenchAccount {
  commonId: string;
  totpSecret: string;
}

export interface Seeded {
  env: Record<string, string>;
  accounts: BenchAccount[];
  client: { clientId: string; clientSecret: string };
  /** The same kind of relying party without MFA: a sign-in there is the identifier and password steps alone. */
  passwordClient: { clientId: string; clientSecret: string };
  /** A back-end service registered for the client-credentials grant. */
  service: { clientId: string; clientSecret: string };
  /** A SAML service provider, registered from the metadata it generated. */
  sp: BenchSp;
  /** Drops the throwaway Postgres database, if one was made. */
  cleanup(): Promise<void>;
}

/**
 * A port free now and below Linux's ephemeral range (32768 and up), so that none of the load
 * generator's own outgoing connections can take it before the server binds it.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = net.createServer().once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/**
 * A fresh database with `people` ready accounts (one precomputed production-strength hash shared
 * by all, a TOTP factor each), one confidential client that requires MFA, one that does not, one service client and
 * one SAML service provider that requires MFA. On Postgres a database of its own is created next
 * to the one DATABASE_URL names.
 */
export async function seed(options: { people: number; databaseUrl?: string }): Promise<Seeded> {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'akamon-bench-'));
  const env: Record<string, string> = {
    PORT: String(port),
    AKAMON_ISSUER: `http://127.0.0.1:${port}`,
    AKAMON_DATA_DIR: dataDir,
    AKAMON_SECRET: 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz',
    AKAMON_DEV_IDV: 'false',
    AKAMON_LOG_LEVEL: 'info',
  };
  let cleanup = async () => {
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  if (options.databaseUrl) {
    const name = `akamon_bench_${Date.now()}`;
    const admin = await openDatabase({ url: options.databaseUrl, poolMax: 1 });
    await sql.raw(`create database ${name}`).execute(admin.db);
    await admin.close();
    const url = new URL(options.databaseUrl);
    url.pathname = `/${name}`;
    env.DATABASE_URL = url.href;
    const removeDir = cleanup;
    cleanup = async () => {
      await removeDir();
      const again = await openDatabase({ url: options.databaseUrl!, poolMax: 1 });
      await sql.raw(`drop database if exists ${name} with (force)`).execute(again.db);
      await again.close();
    };
  }
  const config = loadConfig(env);
  const deps = await buildDeps(
    config,
    createLogger(
      'silent',
      new Writable({
        write(_c, _e, done) {
          done();
        },
      }),
    ),
  );
  try {
    const hash = await deps.hasher.hash(PASSWORD);
    const accounts: BenchAccount[] = [];
    const base = 9_000_000_000;
    for (let start = 0; start < options.people; start += 500) {
      const rows = Array.from({ length: Math.min(500, options.people - start) }, (_, i) => ({
        common_id: String(base + start + i),
        name: `Bench Person ${start + i}`,
        email: null,
        affiliation: 'student' as const,
        status: 'active' as const,
        password_hash: hash,
        password_set_at: new Date(),
        must_change_password: false,
        updated_at: new Date(),
      }));
      const inserted = await deps.database.db.insertInto('account').values(rows).returning(['id', 'common_id']).execute();
      for (const account of inserted) {
        const { secret, sealed } = deps.mfa.pendingTotp();
        // The current step: a sign-in sends the code of the step after its own, which is never this
        // one. (One step back failed whenever a step ended between making the code and checking it.)
        const enrolled = await deps.mfa.confirmTotp(account.id, sealed, await generate({ secret, epoch: Math.floor(Date.now() / 1000) }), 'Bench app');
        if (!enrolled.ok) throw new Error(`TOTP enrolment failed for ${account.common_id}: ${enrolled.reason}`);
        accounts.push({ commonId: account.common_id, totpSecret: secret });
      }
    }
    const clients = new ClientService({
      store: deps.clientStore,
      box: deps.box,
      validate: async () => undefined,
      allowHttpRedirects: true,
      samlContinueUri: 'http://127.0.0.1/saml/continue',
      timeZone: 'Asia/Tokyo',
    });
    const { client, clientSecret } = await clients.create({ name: 'Bench RP', redirectUris: [REDIRECT_URI], firstParty: true, requireMfa: true });
    const passwordOnly = await clients.create({ name: 'Bench RP without MFA', redirectUris: [REDIRECT_URI], firstParty: true });
    const service = await clients.create({ name: 'Bench service', redirectUris: [REDIRECT_URI], clientCredentials: true });
    // MFA required as for the OIDC client (the TOTP step is asked of these accounts either way).
    const sp = await benchSp();
    await clients.create({ protocol: 'saml', name: 'Bench SP', spMetadata: readSpMetadata(sp.metadataXml), requireMfa: true });
    return {
      env,
      accounts,
      cleanup,
      client: { clientId: client.clientId, clientSecret: clientSecret! },
      passwordClient: { clientId: passwordOnly.client.clientId, clientSecret: passwordOnly.clientSecret! },
      service: { clientId: service.client.clientId, clientSecret: service.clientSecret! },
      sp,
    };
  } finally {
    await deps.database.close();
  }
}

export interface Server {
  process: ChildProcess;
  url: string;
  /** Milliseconds from process start to "ready", as the server itself reports it. */
  readyMs: number;
  stop(): Promise<void>;
}

/**
 * The command line of `npm start`, split into its environment assignments and node's arguments,
 * so that the bench runs the server exactly as operators start it (allocator and heap settings).
 */
export function startCommand(): { env: Record<string, string>; nodeArgs: string[] } {
  const script = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const words = script.trim().split(/\s+/);
  const env: Record<string, string> = {};
  while (/^[A-Z_]+=/.test(words[0] ?? '')) {
    const [name, ...value] = words.shift()!.split('=');
    env[name!] = value.join('=');
  }
  if (words.shift() !== 'node') throw new Error(`npm start does not run node: ${script}`);
  return { env, nodeArgs: words };
}

/**
 * Starts the server as `npm start` does (on `cpus` if given), and waits for its ready line (a log
 * record with readyMs). `entry` runs another script with the same node flags (the baseline).
 */
export async function startServer(env: Record<string, string>, options: { profileDir?: string; cpus?: string; entry?: string; nodeFlags?: string[] } = {}): Promise<Server> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AKAMON_') && k !== 'DATABASE_URL' && k !== 'NODE_OPTIONS'));
  const start = startCommand();
  const profile = [...(options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : []), ...(options.nodeFlags ?? [])];
  const nodeArgs = options.entry ? [...start.nodeArgs.slice(0, -1), options.entry] : start.nodeArgs;
  const [command, args] = onCpus(options.cpus, path.join(ROOT, 'node_modules/.bin/node'), [...profile, ...nodeArgs]);
  const child = spawn(command, args, { cwd: ROOT, env: { ...clean, ...start.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let buffered = '';
  const readyMs = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not get ready:\n${buffered.slice(-2000)}`)), 60_000);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      if (buffered.length < 100_000) buffered += chunk;
      const match = /"readyMs":(\d+)/.exec(buffered);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
    });
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}:\n${buffered.slice(-2000)}`)));
  });
  // From here on its log is read by nobody: drain it so that the pipe never blocks the server.
  child.stdout!.removeAllListeners('data').resume();
  child.stderr!.removeAllListeners('data').resume();
  return {
    process: child,
    url: env.AKAMON_ISSUER!,
    readyMs,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
