import { pino, type Logger, type DestinationStream } from 'pino';

/** Paths whose values never reach the log, whatever code logs them. */
export const REDACTED_PATHS = [
  'password', '*.password', 'current', '*.current', 'new', '*.new', 'confirm', '*.confirm',
  'initialPassword', '*.initialPassword', 'clientSecret', '*.clientSecret', 'client_secret', '*.client_secret',
  'token', '*.token', 'code', '*.code', 'refresh_token', '*.refresh_token', 'access_token', '*.access_token',
  'id_token', '*.id_token', 'authorization', '*.authorization', 'cookie', '*.cookie', 'req.headers.cookie',
  'req.headers.authorization', 'headers.cookie', 'headers.authorization', '_csrf', '*._csrf',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({
    level,
    base: { service: 'akamon' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  }, destination);
}
