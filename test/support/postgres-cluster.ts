import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './processes.ts';

/**
 * A throwaway PostgreSQL server of the test's own, so that the test can restart, stop, freeze and
 * exhaust it without touching the server other test files share. Needs the server binaries
 * (Debian's postgresql package, which CI installs) and root or the postgres user to run them.
 */
export interface PostgresCluster {
  readonly url: string;
  restart(): void;
  stop(): void;
  start(): void;
  /** SIGSTOP to every process of the server: it keeps its sockets and answers nothing (a black hole). */
  freeze(): void;
  thaw(): void;
  /** Ends every backend connected to `database`, as an operator or a failover would. */
  terminateBackends(database: string): Promise<number>;
  /** Fills the connection table so that `database`'s clients can get no connection; returns a function that frees it. */
  exhaustConnections(database: string): Promise<() => Promise<void>>;
  close(): void;
}

function binaries(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const versions = fs
    .readdirSync(root)
    .filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

const isRoot = () => process.getuid?.() === 0;
const isPostgresUser = () => os.userInfo().username === 'postgres';

/** Why the cluster cannot be started here, or undefined when it can. */
export function clusterUnavailableReason(): string | undefined {
  if (!binaries()) return 'no PostgreSQL server binaries under /usr/lib/postgresql';
  if (!isRoot() && !isPostgresUser()) return 'the server binaries must run as root (through su postgres) or as the postgres user';
  return undefined;
}

/**
 * Ends every backend connected to `database` (but the caller's) and waits until they have exited:
 * only then are their slots free, so that whoever fills the connection table next does not find
 * slots freed behind it. Answers how many there were.
 */
async function endBackends(client: pg.Client, database: string): Promise<number> {
  const others = 'from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()';
  const { rowCount } = await client.query(`select pg_terminate_backend(pid) ${others}`, [database]);
  for (let waited = 0; waited < 5_000; waited += 50) {
    const { rows } = await client.query(`select count(*)::int as n ${others}`, [database]);
    if (rows[0].n === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return rowCount ?? 0;
}

export async function startCluster(options: { maxConnections: number; database: string }): Promise<PostgresCluster> {
  const bin = binaries()!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'akamon-pg-'));
  const port = await freePort();
  const asPostgres = (command: string) => {
    if (isPostgresUser()) return execFileSync('sh', ['-c', command], { stdio: 'pipe' });
    return execFileSync('su', ['postgres', '-c', command], { stdio: 'pipe' });
  };
  if (isRoot()) execFileSync('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  asPostgres(`${bin}/initdb -D ${data} -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null`);
  const settings = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=${options.maxConnections} -c superuser_reserved_connections=1 -c fsync=off`;
  const start = () => asPostgres(`${bin}/pg_ctl -D ${data} -l ${dir}/log -o '${settings}' -w start >/dev/null`);
  start();
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${options.database}`);
  await admin.end();

  const serverPids = () => {
    const postmaster = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const children = spawnSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map(Number);
    return [postmaster, ...children];
  };
  const signalAll = (signal: NodeJS.Signals) => {
    for (const pid of serverPids()) {
      try {
        process.kill(pid, signal);
      } catch {
        // a backend that just ended
      }
    }
  };

  return {
    url: `postgres://postgres@127.0.0.1:${port}/${options.database}`,
    restart: () => asPostgres(`${bin}/pg_ctl -D ${data} -m fast -o '${settings}' -w restart >/dev/null`),
    stop: () => asPostgres(`${bin}/pg_ctl -D ${data} -m fast -w stop >/dev/null`),
    start,
    freeze: () => signalAll('SIGSTOP'),
    thaw: () => signalAll('SIGCONT'),
    async terminateBackends(database) {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        return await endBackends(client, database);
      } finally {
        await client.end();
      }
    },
    async exhaustConnections(database) {
      const held: pg.Client[] = [];
      // As the superuser, to take the reserved slots too (the nodes connect as the superuser).
      // Full means refused three times in a row, a moment apart: a backend still exiting frees
      // its slot a little later, and the node must not get it.
      const fill = async () => {
        for (let refusals = 0; refusals < 3; ) {
          const client = new pg.Client({ connectionString: adminUrl });
          client.on('error', () => undefined);
          try {
            await client.connect();
            held.push(client);
            refusals = 0;
          } catch {
            refusals++;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      };
      // A node's timer (key refresh, sweeper) may have opened a connection while the table was
      // filling; it would sit idle in the node's pool and serve the next request. End those and
      // take their slots too, until the table is full with none of `database`'s backends in it.
      for (let round = 0; ; round++) {
        await fill();
        const ended = await endBackends(held[0], database);
        if (ended === 0) break;
        if (round === 20) throw new Error(`${database} keeps getting connections in a full table`);
      }
      return async () => {
        await Promise.all(held.map((client) => client.end().catch(() => undefined)));
      };
    },
    close() {
      try {
        signalAll('SIGCONT');
        asPostgres(`${bin}/pg_ctl -D ${data} -m immediate -w stop >/dev/null 2>&1`);
      } catch {
        // already stopped
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
