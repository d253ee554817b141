// Runs once before the suite (plain JS: Jest loads it outside its transform). The browser tests
// drive Debian's chromium; on a fresh Debian machine where we are root, install it here so that
// `npm install && npm test` needs nothing else.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';

export const CHROMIUM = process.env.AKAMON_CHROMIUM ?? '/usr/bin/chromium';

export default async function globalSetup() {
  await dropOldTestSchemas();
  if (fs.existsSync(CHROMIUM)) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = spawnSync('which', ['apt-get']).status === 0;
  if (!isRoot || !hasApt) {
    throw new Error(`the browser tests need chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium) or set AKAMON_CHROMIUM`);
  }
  process.stderr.write('Installing Debian chromium for the browser tests (once)...\n');
  execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** How old a test schema must be before a new run drops it: older than any run still going on the same server. */
const SCHEMA_KEEP_MS = 3 * 60 * 60 * 1000;

/**
 * On a real Postgres, each test file makes a schema test_<base-36 time>_<random> (test/support/database.ts);
 * earlier runs' go here, before any file starts. Only those made over SCHEMA_KEEP_MS ago (or named in
 * an older way): another run on the same server, a developer's beside CI's, keeps its own.
 */
async function dropOldTestSchemas() {
  const url = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  if (!url) return;
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query("select nspname from pg_namespace where nspname like 'test\\_%'");
    const made = (name) => Number.parseInt(/^test_([0-9a-z]+)_[0-9a-f]+$/.exec(name)?.[1] ?? '0', 36);
    for (const { nspname } of rows) if (Date.now() - made(nspname) > SCHEMA_KEEP_MS) await client.query(`drop schema "${nspname}" cascade`);
  } finally {
    await client.end();
  }
}
