import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { openDatabase } from '../../src/db/database.ts';

/**
 * Akamon's own processes as an operator runs them: the server (src/main.ts) and the scripts of the
 * project (the CLI, src/cli/main.ts), each with the project's Node and in the project's folder.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE = path.join(ROOT, 'node_modules/.bin/node');

/** A TCP port on the loopback interface that nobody listens on right now. */
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

/** Node's compile cache for the children (see cleanEnv). */
const COMPILE_CACHE = path.join(os.tmpdir(), `akamon-test-compile-cache-${process.getuid?.() ?? 'user'}`);

/**
 * The environment of the test run without anything that would steer a child elsewhere: the test's
 * own settings, database and port, and jest's NODE_OPTIONS (a child runs as an operator runs it).
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('AKAMON_') || key === 'DATABASE_URL' || key === 'PORT' || key === 'NODE_OPTIONS') delete env[key];
  // As `npm start` does: children after the first skip stripping the TypeScript (half a CLI start).
  env.NODE_COMPILE_CACHE = COMPILE_CACHE;
  return env;
}

function spawnScript(script: string, args: string[], env: Record<string, string>): ChildProcess {
  return spawn(NODE, [script, ...args], { cwd: ROOT, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a script of the project (a path from the project's root) to its end. */
export function runScript(script: string, args: string[], env: Record<string, string> = {}): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawnScript(script, args, env);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The akamon CLI against a running server: its URL and, when given, an operator token (without one
 * the CLI reads the token file from AKAMON_DATA_DIR). `env` comes last and may override both.
 */
export function runCli(server: { url: string; token?: string }, args: string[], env: Record<string, string> = {}): Promise<ScriptResult> {
  const token: Record<string, string> = server.token === undefined ? {} : { AKAMON_OPERATOR_TOKEN: server.token };
  return runScript('src/cli/main.ts', args, { AKAMON_URL: server.url, ...token, ...env });
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

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process and what it wrote so far: an Akamon server, or a relying party's server (Apache, Python). */
export interface WatchedProcess {
  readonly child: ChildProcess;
  /** Every line it wrote, stdout and stderr as they came: JSON log lines and plain text (a crash's trace is on stderr). */
  readonly lines: string[];
  /** The lines, as one text (for error messages and "contains" checks). */
  output(): string;
  /** Its stderr alone: where it says in one line why it would not start. */
  stderr(): string;
  /** Set once it has ended and its output has been read to the end. */
  readonly exit: ProcessExit | undefined;
  /** Resolves with the exit once it has ended and its output has been read to the end. */
  readonly exited: Promise<ProcessExit>;
  /** Resolves once `url` answers (any status); fails with its output if it ends or takes longer. */
  untilAnswers(url: string, timeoutMs?: number, ready?: (response: Response) => boolean): Promise<void>;
  /** SIGTERM (SIGKILL if it lingers). */
  stop(): Promise<ProcessExit>;
}

/** A server process (src/main.ts) and what it wrote so far. */
export interface ServerProcess extends WatchedProcess {
  /** http://127.0.0.1:port */
  readonly url: string;
  /** Resolves once it answers /healthz; fails with its output if it ends or takes longer. */
  untilReady(timeoutMs?: number): Promise<void>;
  /** SIGTERM (SIGKILL if it lingers), then removes the data directory it was given by default. */
  stop(): Promise<ProcessExit>;
}

/** Collects a stream into lines; the last one also when it does not end with a newline. */
function collectLines(stream: Readable, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    for (const line of parts) if (line !== '') onLine(line);
  });
  stream.once('end', () => {
    if (rest !== '') onLine(rest);
  });
}

/** Watches a child spawned with piped stdout and stderr: its lines, its end, a readiness poll and a stop. */
export function watchProcess(child: ChildProcess, name = 'the server'): WatchedProcess {
  const lines: string[] = [];
  let stderr = '';
  let exit: ProcessExit | undefined;
  collectLines(child.stdout!, (line) => lines.push(line));
  collectLines(child.stderr!, (line) => {
    lines.push(line);
    stderr += `${line}\n`;
  });
  // 'close' rather than 'exit': by then stdout and stderr have been read to the end.
  const exited = new Promise<ProcessExit>((resolve) =>
    child.once('close', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  const output = () => lines.join('\n');
  return {
    child,
    lines,
    output,
    stderr: () => stderr,
    get exit() {
      return exit;
    },
    exited,
    async untilAnswers(url, timeoutMs = 45_000, ready = () => true) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (exit) throw new Error(`${name} exited (${JSON.stringify(exit)}) before it was ready:\n${output()}`);
        try {
          const response = await fetch(url, { redirect: 'manual' });
          await response.arrayBuffer();
          if (ready(response)) return;
        } catch {
          // not listening yet
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`${name} did not answer ${url} within ${timeoutMs / 1000} s:\n${output()}`);
    },
    async stop() {
      if (!exit) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

/**
 * Starts src/main.ts on `port` with small argon2 parameters, no development identity provider, the
 * issuer http://127.0.0.1:port and a data directory of its own (removed at stop); `env` may
 * override each of these. Returns at once: see untilReady, or startServer.
 */
export async function spawnServer(options: { port: number; env?: Record<string, string> }): Promise<ServerProcess> {
  const url = `http://127.0.0.1:${options.port}`;
  // PGlite lives there and the first operator token is written there; a test that restarts or
  // shares a database passes AKAMON_DATA_DIR (processDatabase).
  const ownDataDir = options.env?.AKAMON_DATA_DIR === undefined ? await fs.mkdtemp(path.join(os.tmpdir(), 'akamon-server-')) : undefined;
  const child = spawnScript('src/main.ts', [], {
    PORT: String(options.port),
    AKAMON_ISSUER: url,
    ...(ownDataDir ? { AKAMON_DATA_DIR: ownDataDir } : {}),
    AKAMON_ARGON2_MEMORY_KIB: '1024',
    AKAMON_ARGON2_ITERATIONS: '1',
    AKAMON_LOG_LEVEL: 'warn',
    AKAMON_DEV_IDV: 'false',
    ...options.env,
  });
  const watched = watchProcess(child);
  const stopChild = watched.stop;
  // Assigned onto the watched object, so that its `exit` getter stays live.
  return Object.assign(watched, {
    url,
    untilReady: (timeoutMs?: number) => watched.untilAnswers(`${url}/healthz`, timeoutMs, (response) => response.ok),
    async stop() {
      const exit = await stopChild();
      if (ownDataDir) await fs.rm(ownDataDir, { recursive: true, force: true });
      return exit;
    },
  });
}

/** spawnServer, then untilReady; a server that does not get ready is stopped before the error is thrown. */
export async function startServer(options: { port: number; env?: Record<string, string> }): Promise<ServerProcess> {
  const server = await spawnServer(options);
  try {
    await server.untilReady();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}
