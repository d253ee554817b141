import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { openDatabase } from '../../src/db/database.ts';

/** Akamon's server run as a child process, as an operator runs it (src/main.ts). */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE = path.join(ROOT, 'node_modules/.bin/node');

/** The environment of the test run without anything that would steer the child elsewhere. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('AKAMON_') || key === 'DATABASE_URL' || key === 'PORT' || key === 'NODE_OPTIONS') delete env[key];
  return env;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A database for server processes of one test file: a data directory (PGlite) and, when the tests
 * run on a real Postgres, a database of its own there (the server uses the default schema of what
 * it is given). Only one process at a time may open an embedded database.
 */
export interface ProcessDatabase {
  env: Record<string, string>;
  drop(): Promise<void>;
}

export async function processDatabase(): Promise<ProcessDatabase> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'akamon-process-'));
  const env: Record<string, string> = { AKAMON_DATA_DIR: dataDir };
  const serverUrl = process.env.TEST_DATABASE_URL;
  const name = `akamon_process_${Date.now()}_${process.pid}`;
  if (serverUrl) {
    const admin = await openDatabase({ url: serverUrl, poolMax: 1 });
    await sql.raw(`create database ${name}`).execute(admin.db);
    await admin.close();
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    env.DATABASE_URL = url.href;
  }
  return {
    env,
    async drop() {
      if (serverUrl) {
        const admin = await openDatabase({ url: serverUrl, poolMax: 1 });
        await sql.raw(`drop database if exists ${name} with (force)`).execute(admin.db);
        await admin.close();
      }
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ServerProcess {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  stderr(): string;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** Starts src/main.ts with small argon2 parameters and no development identity provider. */
export function spawnServer(env: Record<string, string>): ServerProcess {
  const child = spawn(NODE, ['src/main.ts'], {
    cwd: ROOT,
    env: { ...cleanEnv(), AKAMON_ARGON2_MEMORY_KIB: '1024', AKAMON_ARGON2_ITERATIONS: '1', AKAMON_LOG_LEVEL: 'warn', AKAMON_DEV_IDV: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    output += d;
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    stderr: () => stderr,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

/** Waits until the server answers /healthz; fails with its output if it exits first. */
export async function untilHealthy(server: ServerProcess, url: string, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`the server exited with ${server.child.exitCode}:\n${server.output()}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the server did not answer /healthz in time:\n${server.output()}`);
}
