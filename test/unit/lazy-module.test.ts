import { expect, test } from '@jest/globals';
import { lazyModule, warmLazyModules } from '../../src/shared/lazy-module.ts';

test('a lazy module loads on first use, once, and a failed load is tried again', () => {
  let loads = 0;
  let failNext = true;
  const module = lazyModule((require) => {
    loads++;
    if (failNext) {
      failNext = false;
      throw new Error('not installed');
    }
    return require('node:path') as typeof import('node:path');
  });
  expect(loads).toBe(0);
  expect(() => module()).toThrow('not installed');
  expect(module().join('a', 'b')).toBe('a/b');
  expect(module()).toBe(module());
  expect(loads).toBe(2);
});

test('the warm-up loads every lazy module in the background and reports a failure without throwing', async () => {
  const loaded: string[] = [];
  const good = lazyModule(() => loaded.push('good'));
  lazyModule(() => {
    throw new Error('broken');
  });
  const errors: unknown[] = [];
  warmLazyModules((error) => errors.push(error));
  expect(loaded).toEqual([]);
  // One module per turn of the event loop: ten turns cover the few registered here.
  for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
  expect(loaded).toEqual(['good']);
  expect(errors).toEqual([new Error('broken')]);
  // Loaded once: use after the warm-up does not load again.
  good();
  expect(loaded).toEqual(['good']);
});
