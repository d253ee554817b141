import type { Server } from 'node:http';
import { ConfigError, loadConfig } from './config/config.ts';
import { createLogger } from './http/logger.ts';
import { buildDeps } from './deps.ts';
import { buildApp } from './app.ts';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`akamon: ${error.message}\n`);
  process.exit(2);
}
const logger = createLogger(config.logLevel);
let deps: Awaited<ReturnType<typeof buildDeps>>;
let akamon: Awaited<ReturnType<typeof buildApp>>;
let firstOperatorTokenFile: string | undefined;
try {
  deps = await buildDeps(config, logger);
  firstOperatorTokenFile = await deps.operators.ensureInitial(config.dataDir);
  akamon = await buildApp(deps);
} catch (error) {
  // One line for the operator; the details (never secrets) go to the log.
  logger.fatal({ err: error }, 'akamon could not start');
  process.stderr.write(`akamon: could not start: ${(error as Error).message}\n`);
  process.exit(1);
}

const server: Server = akamon.app.listen(config.port, config.listenHost, () => {
  akamon.holder.start(config.keyRefreshSeconds, (error) => logger.error({ err: error }, 'key refresh failed'));
  akamon.sweeper.start(60, (error) => logger.error({ err: error }, 'sweep failed'));
  logger.info({ issuer: config.issuer, database: deps.database.kind, readyMs: Math.round(process.uptime() * 1000) }, 'akamon ready');
  if (firstOperatorTokenFile) logger.info({ file: firstOperatorTokenFile }, 'operator token for the akamon CLI written');
  if (!config.production) {
    process.stdout.write([
      '',
      `Akamon is running at ${config.issuer}`,
      '',
      'Create an account (in another terminal):',
      '  npx akamon account create --id 0123456789 --name "Hanako Todai" --affiliation student',
      `Then sign in at ${config.issuer}/account with the Common ID and the initial password it prints.`,
      '',
      'Register a relying party:',
      '  npx akamon client create --name "My app" --redirect-uri http://localhost:8080/callback',
      '',
    ].join('\n'));
  }
});
server.requestTimeout = 30_000;
server.headersTimeout = 15_000;
server.maxHeadersCount = 100;

async function shutdown(signal: string) {
  logger.info({ signal }, 'shutting down');
  akamon.holder.stop();
  akamon.sweeper.stop();
  server.close();
  server.closeIdleConnections();
  await deps.database.close();
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
