import { expect, test } from '@jest/globals';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/shared/logger.ts';
import { startDevIdv } from '../../src/idv/dev-provider.ts';

test('the development identity provider refuses to start in production', async () => {
  const logger = createLogger(
    'silent',
    new Writable({
      write(_c, _e, done) {
        done();
      },
    }),
  );
  await expect(startDevIdv({ production: true, host: '127.0.0.1', port: 0, clients: [], logger })).rejects.toThrow(/cannot run in production/);
});
