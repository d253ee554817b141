import { expect, test } from '@jest/globals';
import { forget, inRequestMemo, memoised } from '../../src/shared/request-memo.ts';

function counter() {
  let loads = 0;
  return { load: async () => ++loads, get loads() { return loads; } };
}

test('within one request a key is loaded once, concurrent readers included, until a write forgets it', async () => {
  const source = counter();
  await inRequestMemo(async () => {
    const [a, b] = await Promise.all([memoised('client:x', source.load), memoised('client:x', source.load)]);
    expect([a, b]).toEqual([1, 1]);
    expect(await memoised('client:y', source.load)).toBe(2);
    forget('client:x');
    expect(await memoised('client:x', source.load)).toBe(3);
    expect(await memoised('client:x', source.load)).toBe(3);
  });
  expect(source.loads).toBe(3);
});

test('each request starts empty, and outside a request every read loads', async () => {
  const source = counter();
  await inRequestMemo(() => memoised('k', source.load));
  await inRequestMemo(() => memoised('k', source.load));
  await memoised('k', source.load);
  await memoised('k', source.load);
  expect(source.loads).toBe(4);
});

test('a failed read is not remembered', async () => {
  let calls = 0;
  const flaky = async () => {
    calls += 1;
    if (calls === 1) throw new Error('connection reset');
    return 'row';
  };
  await inRequestMemo(async () => {
    await expect(memoised('k', flaky)).rejects.toThrow('connection reset');
    await expect(memoised('k', flaky)).resolves.toBe('row');
  });
  expect(calls).toBe(2);
});
