import { ConfigError, loadConfig } from '../../config/config.ts';
import { CliError, UsageError } from '../args.ts';
import { serverUrl } from '../admin-client.ts';
import type { Command } from '../command.ts';
import { out } from '../output.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  synopsis: '',
  summary: 'Apply the pending database migrations (the server also does this when it starts).',
  server: false,
  notes: [
    'It opens the database itself, configured like the server: DATABASE_URL, else the embedded',
    'database in $AKAMON_DATA_DIR/pglite (stop the server first: the embedded database has one user).',
    'With --json it prints {"applied": [...]}.',
  ].join('\n'),
  async run(ctx) {
    let config;
    try {
      config = loadConfig();
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(error.message, ctx.command);
      throw error;
    }
    // The embedded database has one user: opening it under a running server would corrupt it.
    if (!config.databaseUrl) {
      const url = serverUrl(undefined);
      const running = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
        () => true,
        () => false,
      );
      if (running) throw new CliError(`a server is running at ${url} with the embedded database; it applied the migrations when it started (stop it to run migrate)`);
    }
    // Loaded here only: the other commands never open a database.
    const [{ openConfiguredDatabase }, { migrateToLatest }, { createLogger }] = await Promise.all([import('../../deps.ts'), import('../../db/migrator.ts'), import('../../shared/logger.ts')]);
    const database = await openConfiguredDatabase(config, createLogger('warn'));
    let applied: string[];
    try {
      applied = await migrateToLatest(database.db);
    } finally {
      await database.close();
    }
    ctx.result({ applied }, () => out(applied.length ? `Applied ${applied.length} migration(s):\n${applied.map((m) => `  ${m}`).join('\n')}` : 'The database is already up to date.'));
  },
};
