import type { Server } from 'node:http';
import { startMetricsServer } from './metrics/metrics-route.ts';
import { ConfigError, loadConfig } from './config/config.ts';
import { createLogger } from './shared/logger.ts';
import { buildDeps } from './deps.ts';
import { buildApp } from './app.ts';
import { lowerWorkerPriority } from './password/hash-priority.ts';
import { randomToken } from './crypto/tokens.ts';
import { DatabaseUnavailableError } from './shared/errors.ts';
import { warmLazyModules } from './shared/lazy-module.ts';
import { startDevIdv, type DevIdv } from './idv/dev-provider.ts';
import type { Config, IdvSettings } from './config/config.ts';
import { HTTP_HEADERS_TIMEOUT_MS, HTTP_MAX_HEADERS, HTTP_REQUEST_TIMEOUT_MS, SWEEP_INTERVAL_SECONDS } from './config/defaults.ts';

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`akamon: ${error.message}\n`);
  process.exit(2);
}
const logger = createLogger(config.logLevel);
// A fault that escapes every handler (a socket error, a rejected background write) is logged and
// the node keeps serving: the requests in flight already have their answers or their 503s.
process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection; still serving'));
process.on('uncaughtException', (error) => logger.error({ err: error }, 'uncaught exception; still serving'));
let deps: Awaited<ReturnType<typeof buildDeps>>;
let akamon: Awaited<ReturnType<typeof buildApp>>;
let firstOperatorTokenFile: string | undefined;
let devIdv: DevIdv | undefined;
let metricsServer: Server | undefined;

/**
 * Development only: the stand-in for the national ID card app, on its own port, with Akamon as its
 * client. A busy port costs the convenience, not the start.
 */
async function startDevelopmentIdv(port: number): Promise<IdvSettings | undefined> {
  const secret = randomToken();
  try {
    devIdv = await startDevIdv({
      production: config.production,
      host: config.listenHost,
      port,
      publicHost: new URL(config.issuer).hostname,
      logger,
      clients: [{ client_id: 'akamon', client_secret: secret, redirect_uris: [`${config.issuer}/idv/callback`] }],
    });
  } catch (error) {
    if ((error as { code?: string }).code !== 'EADDRINUSE') throw error;
    logger.warn({ port }, 'development identity provider not started: its port is in use (set AKAMON_DEV_IDV_PORT)');
    return undefined;
  }
  return { issuer: devIdv.issuer, clientId: 'akamon', auth: { kind: 'secret', secret }, scopes: 'openid profile', nameClaim: 'name' };
}

try {
  const idvSettings = config.devIdvPort === undefined ? undefined : await startDevelopmentIdv(config.devIdvPort);
  deps = await buildDeps(config, logger, { idvSettings });
  firstOperatorTokenFile = await deps.operators.ensureInitial(config.dataDir);
  akamon = await buildApp(deps);
  await deps.passwordSignin.warmUp();
  const lowered = lowerWorkerPriority(config.hashNiceness);
  if (lowered) logger.debug({ threads: lowered, niceness: config.hashNiceness }, 'hashing threads run at lower priority');
} catch (error) {
  // One line for the operator; the details (never secrets) go to the log.
  logger.fatal({ err: error }, 'akamon could not start');
  process.stderr.write(`akamon: could not start: ${(error as Error).message}\n`);
  process.exit(1);
}

const server: Server = akamon.app.listen(config.port, config.listenHost, () => {
  // Background jobs retry on their next tick; an outage is expected and needs no stack trace.
  const backgroundFailure = (job: string) => (error: unknown) => {
    if (error instanceof DatabaseUnavailableError) logger.warn({ job, cause: (error.cause as Error | undefined)?.message }, 'background job skipped: database unavailable');
    else logger.error({ err: error, job }, 'background job failed');
  };
  akamon.holder.start(config.keyRefreshSeconds, backgroundFailure('key refresh'));
  akamon.sweeper.start(SWEEP_INTERVAL_SECONDS, (error, task) => backgroundFailure(`sweep: ${task}`)(error));
  if (config.metrics) {
    const { port, host } = config.metrics;
    startMetricsServer(deps.metrics, port, host).then(
      (listener) => {
        metricsServer = listener;
        logger.info({ port, host }, 'metrics listener ready');
      },
      // The node serves sign-ins without it; /metrics on the main port still answers to a token.
      (error: Error) => logger.error({ err: { message: error.message }, port, host }, 'metrics listener not started'),
    );
  }
  logger.info({ issuer: config.issuer, database: deps.database.kind, readyMs: Math.round(process.uptime() * 1000) }, 'akamon ready');
  // The libraries left out of the start, loaded now so the first person to need one does not wait.
  warmLazyModules((error) => logger.error({ err: error }, 'library not loaded in the background; its first use tries again'));
  if (firstOperatorTokenFile) logger.info({ file: firstOperatorTokenFile }, 'operator token for the akamon CLI written');
  if (!config.production) {
    process.stdout.write(
      [
        '',
        `Akamon is running at ${config.issuer}`,
        '',
        'Create an account (in another terminal):',
        '  npx akamon account create --id 0123456789 --name "Hanako Todai" --affiliation student',
        `Then sign in at ${config.issuer}/account as ${config.realmSuffix ? `0123456789@${config.realmSuffix}` : '0123456789'} with the initial password it prints.`,
        '',
        'Register a relying party:',
        '  npx akamon client create --name "My app" --redirect-uri http://localhost:8080/callback',
        '',
      ].join('\n'),
    );
  }
});
// A port taken or not ours to open: nothing can be served, so the process ends (exit 1) for its
// supervisor to see, where the process-wide handler would log it and go on serving nothing.
function notListening(error: NodeJS.ErrnoException) {
  logger.fatal({ err: { code: error.code, message: error.message }, port: config.port }, 'akamon could not listen');
  process.stderr.write(`akamon: could not listen on ${config.listenHost}:${config.port}: ${error.message}\n`);
  void deps.database.close().finally(() => process.exit(1));
}
server.once('error', notListening);
server.once('listening', () => server.off('error', notListening));
server.requestTimeout = HTTP_REQUEST_TIMEOUT_MS;
server.headersTimeout = HTTP_HEADERS_TIMEOUT_MS;
server.maxHeadersCount = HTTP_MAX_HEADERS;

async function shutdown(signal: string) {
  logger.info({ signal }, 'shutting down');
  akamon.holder.stop();
  // Work in the background ends cleanly: a sweep under way, an import's current row, the method-change mails already started.
  await Promise.all([akamon.sweeper.stop(), deps.importJobs.stop()]);
  await deps.notices.settled();
  await devIdv?.close();
  metricsServer?.close();
  server.close();
  server.closeIdleConnections();
  await deps.database.close();
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
