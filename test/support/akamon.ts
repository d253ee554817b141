import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { buildDeps, type Deps } from '../../src/deps.ts';
import { buildApp, type AkamonApp } from '../../src/app.ts';
import { createLogger } from '../../src/shared/logger.ts';
import type { Clock } from '../../src/shared/clock.ts';
import type { ClientInput } from '../../src/client/client.service.ts';
import { createTestDatabase, testDatabaseUrl, type TestDatabase } from './database.ts';
import { openDatabase } from '../../src/db/database.ts';
import { startSmtpSink, type ReceivedMail } from './smtp-sink.ts';

export interface RunningAkamon {
  url: string;
  config: Config;
  deps: Deps;
  akamon: AkamonApp;
  /** Every log line written so far, as text. */
  logs: string[];
  operatorToken: string;
  /** The Postgres schema of the database (real Postgres only), shared by a second node. */
  schema?: string;
  /** Mails Akamon sent, as received by a real SMTP server on loopback. */
  mails: ReceivedMail[];
  smtp: Awaited<ReturnType<typeof startSmtpSink>>;
  /** `profile` holds the fields of src/account/account-fields.ts by their admin API names (department, familyName, ...). */
  createAccount(input?: AccountFixture): Promise<{ commonId: string; password: string; id: string }>;
  /** An account whose initial password was already replaced by `password`. */
  createReadyAccount(input?: AccountFixture): Promise<{ commonId: string; password: string; id: string }>;
  createClient(input?: ClientInput): Promise<{ clientId: string; clientSecret: string | null; redirectUri: string }>;
  close(): Promise<void>;
}

export type AccountFixture = Partial<{ commonId: string; name: string; affiliation: string; email: string | null; profile: Record<string, unknown> }>;

let counter = 0;
export function newCommonId(): string {
  counter += 1;
  return String(Date.now() % 1e6).padStart(6, '0') + String(process.pid % 100).padStart(2, '0') + String(counter % 100).padStart(2, '0');
}

/** A call to the admin API as the test's operator: its status and JSON answer ({} when it has no body). */
export async function adminApi(akamon: Pick<RunningAkamon, 'url' | 'operatorToken'>, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(`${akamon.url}/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${akamon.operatorToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, any> };
}

export const READY_PASSWORD = 'Kq7#vLm2$pRt9w';

/**
 * Starts Akamon on a loopback port with its own database, small argon2 parameters and captured
 * logs. `share` lets a second node use the first node's database (two-node tests).
 */
export async function startAkamon(
  options: {
    env?: Record<string, string>;
    /** More environment that needs this node's URL first (an upstream provider registering its redirect URI). */
    envFor?: (url: string) => Promise<Record<string, string>>;
    clock?: Clock;
    share?: RunningAkamon;
    /**
     * Tests run without a realm suffix (plain Common IDs everywhere, eduPerson scope from the issuer)
     * unless they name one in `env` or ask for the shipped default (`utac.u-tokyo.ac.jp`) here.
     */
    shippedRealm?: boolean;
  } = {},
): Promise<RunningAkamon> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const smtp = await startSmtpSink();
  const dataDir = options.share?.config.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'akamon-test-'));
  const config = loadConfig({
    PORT: String(port),
    AKAMON_ISSUER: url,
    AKAMON_DATA_DIR: dataDir,
    AKAMON_SECRET: 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz',
    AKAMON_ARGON2_MEMORY_KIB: '1024',
    AKAMON_ARGON2_ITERATIONS: '1',
    AKAMON_LOG_LEVEL: 'debug',
    AKAMON_KEY_REFRESH_SECONDS: '1',
    AKAMON_SMTP_URL: smtp.url,
    AKAMON_CAPTCHA_MAX_NUMBER: '2000',
    ...(options.shippedRealm ? {} : { AKAMON_REALM_SUFFIX: 'none' }),
    // '{url}' and '{port}' in a value stand for this node's own address, known only once it listens.
    ...Object.fromEntries(Object.entries(options.env ?? {}).map(([k, v]) => [k, v.replaceAll('{url}', url).replaceAll('{port}', String(port))])),
    ...(await options.envFor?.(url)),
  });
  const logs: string[] = [];
  const logger = createLogger(
    config.logLevel,
    new Writable({
      write(chunk, _enc, done) {
        logs.push(String(chunk));
        done();
      },
    }),
  );
  let testDb: TestDatabase | undefined;
  let deps: Deps;
  let ownPool: Deps['database'] | undefined;
  if (options.share) {
    // On a real server the second node gets its own connection pool, as a second process would;
    // an embedded database has a single user, so there the nodes share its handle.
    ownPool = testDatabaseUrl ? await openDatabase({ url: testDatabaseUrl, schema: options.share.schema }) : undefined;
    deps = await buildDeps(config, logger, { database: ownPool ?? options.share.deps.database, clock: options.clock, schema: options.share.schema });
  } else {
    testDb = await createTestDatabase();
    deps = await buildDeps(config, logger, { database: testDb.database, clock: options.clock, schema: testDb.schema });
  }
  const akamon = await buildApp(deps);
  server.on('request', akamon.app.callback());
  const operatorToken = await deps.operators.create('test');

  const running: RunningAkamon = {
    url,
    schema: testDb?.schema ?? options.share?.schema,
    mails: smtp.mails,
    smtp,
    config,
    deps,
    akamon,
    logs,
    operatorToken,
    async createAccount(input = {}) {
      const commonId = input.commonId ?? newCommonId();
      const { account, initialPassword } = await deps.accountService.create({
        commonId,
        name: input.name ?? 'Hanako Todai',
        affiliation: input.affiliation ?? 'student',
        email: input.email === undefined ? `${commonId}@mail.example.ac.jp` : input.email,
        profile: input.profile,
      });
      return { commonId, password: initialPassword, id: account.id };
    },
    async createReadyAccount(input = {}) {
      const created = await running.createAccount(input);
      await deps.accountService.changePassword(created.id, created.password, READY_PASSWORD, READY_PASSWORD);
      return { ...created, password: READY_PASSWORD };
    },
    async createClient(input = {}) {
      const redirectUri = input.redirectUris?.[0] ?? 'http://127.0.0.1:9/callback';
      const { client, clientSecret } = await akamon.clients.create({ name: 'Test RP', redirectUris: [redirectUri], firstParty: true, ...input });
      return { clientId: client.clientId, clientSecret, redirectUri };
    },
    async close() {
      akamon.holder.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await smtp.close();
      if (testDb) await testDb.database.close();
      if (ownPool) await ownPool.close();
    },
  };
  return running;
}
