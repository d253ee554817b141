import { randomInt } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from '@jest/globals';
import { freePort, processDatabase, runCli, startServer, type ProcessDatabase, type ScriptResult, type ServerProcess } from './processes.ts';

/**
 * What the CLI test files share: an akamon server (a child process) on a database of its own, a
 * work directory for the files they import, and the CLI run against that server as an operator runs it.
 */

/** Distinct Common IDs per run (`cid(1)`, `cid(2)`...), so that runs against a shared TEST_DATABASE_URL do not collide. */
export function commonIdsOfRun(): (n: number) => string {
  const base = randomInt(100_000, 999_999) * 10_000;
  return (n) => String(base + n).padStart(10, '0');
}

/** The lines of a CLI's output that are not blank. */
export const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

/** One line on stderr of the form "akamon: ...", matching `pattern` when given. */
export function expectOneErrorLine(r: ScriptResult, pattern?: RegExp): void {
  const errs = lines(r.stderr);
  expect(errs).toHaveLength(1);
  expect(errs[0]).toMatch(/^akamon: /);
  if (pattern) expect(errs[0]).toMatch(pattern);
}

export interface CliServer {
  /** The server's URL, its data directory and the work directory: read them in tests (they are set in beforeAll). */
  readonly url: string;
  readonly dataDir: string;
  readonly work: string;
  /** The CLI without a token: it reads the server's first operator token from the data directory. `env` may override. */
  cli(args: string[], env?: Record<string, string>): Promise<ScriptResult>;
  /** The CLI with --json, its output parsed; a failure throws with its stderr. */
  json<T = any>(args: string[]): Promise<T>;
}

/** Starts the server and a work directory (`workPrefix`...) in the file's beforeAll; stops and removes them in its afterAll. */
export function cliServer(workPrefix: string): CliServer {
  let database: ProcessDatabase | undefined;
  let server: ServerProcess | undefined;
  let work: string | undefined;
  beforeAll(async () => {
    database = await processDatabase();
    work = await fs.mkdtemp(path.join(os.tmpdir(), workPrefix));
    server = await startServer({ port: await freePort(), env: database.env });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await database?.drop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  }, 30_000);
  const cli = (args: string[], env: Record<string, string> = {}) => runCli({ url: server!.url }, args, { AKAMON_DATA_DIR: database!.env.AKAMON_DATA_DIR!, ...env });
  return {
    get url() {
      return server!.url;
    },
    get dataDir() {
      return database!.env.AKAMON_DATA_DIR!;
    },
    get work() {
      return work!;
    },
    cli,
    async json<T = any>(args: string[]): Promise<T> {
      const r = await cli([...args, '--json']);
      if (r.code !== 0) throw new Error(`akamon ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    },
  };
}
