import { pino, type Logger, type DestinationStream } from 'pino';

/** Paths whose values never reach the log, whatever code logs them. */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'current',
  '*.current',
  'new',
  '*.new',
  'confirm',
  '*.confirm',
  'initialPassword',
  '*.initialPassword',
  'clientSecret',
  '*.clientSecret',
  'client_secret',
  '*.client_secret',
  'token',
  '*.token',
  'code',
  '*.code',
  'refresh_token',
  '*.refresh_token',
  'access_token',
  '*.access_token',
  'id_token',
  '*.id_token',
  'authorization',
  '*.authorization',
  'cookie',
  '*.cookie',
  'req.headers.cookie',
  'req.headers.authorization',
  'headers.cookie',
  'headers.authorization',
  '_csrf',
  '*._csrf',
];

/**
 * Standard output is written asynchronously: a synchronous write per line cost a sign-in more CPU
 * than its database work. Lines written while one write is in flight go out together, and pino
 * flushes what is left when the process exits.
 */
export function createLogger(level: string, destination: DestinationStream = pino.destination({ dest: 1, sync: false })): Logger {
  return pino(
    {
      level,
      base: { service: 'akamon' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
