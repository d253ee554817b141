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

/** On a real Postgres, each test file makes a schema test_<random>; the last run's go here, before any file starts. */
async function dropOldTestSchemas() {
  const url = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  if (!url) return;
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query("select nspname from pg_namespace where nspname like 'test\\_%'");
    for (const { nspname } of rows) await client.query(`drop schema "${nspname}" cascade`);
  } finally {
    await client.end();
  }
}
