import { expect, test } from '@jest/globals';
import { inRequestMemo, memoised, writing } from '../../src/shared/request-memo.ts';

function counter() {
  let loads = 0;
  return {
    load: async () => ++loads,
    get loads() {
      return loads;
    },
  };
}

const write = () => Promise.resolve();

test('within one request a key is loaded once, concurrent readers included, until a write forgets it', async () => {
  const source = counter();
  await inRequestMemo(async () => {
    const [a, b] = await Promise.all([memoised('client:x', source.load), memoised('client:x', source.load)]);
    expect([a, b]).toEqual([1, 1]);
    expect(await memoised('client:y', source.load)).toBe(2);
    await writing('client:x', write);
    expect(await memoised('client:x', source.load)).toBe(3);
    expect(await memoised('client:x', source.load)).toBe(3);
    // A prefix forgets every key under it.
    await writing('client:', write);
    expect(await memoised('client:y', source.load)).toBe(4);
  });
  expect(source.loads).toBe(4);
});

test('each request starts empty, and outside a request every read loads', async () => {
  const source = counter();
  await inRequestMemo(() => memoised('k', source.load));
  await inRequestMemo(() => memoised('k', source.load));
  await memoised('k', source.load);
  await memoised('k', source.load);
  expect(source.loads).toBe(4);
});

test('a failed read is not remembered, nor is a failed write allowed to keep old reads', async () => {
  let calls = 0;
  const flaky = async () => {
    calls += 1;
    if (calls === 1) throw new Error('connection reset');
    return `row ${calls}`;
  };
  await inRequestMemo(async () => {
    await expect(memoised('k', flaky)).rejects.toThrow('connection reset');
    await expect(memoised('k', flaky)).resolves.toBe('row 2');
    await expect(
      writing('k', async () => {
        throw new Error('deadlock');
      }),
    ).rejects.toThrow('deadlock');
    await expect(memoised('k', flaky)).resolves.toBe('row 3');
  });
});

test('what a read brings along answers later reads, unless a write overtook the read', async () => {
  await inRequestMemo(async () => {
    await memoised('token:1', async (bringAlong) => {
      bringAlong('grant:1', 'grant row');
      return 'token row';
    });
    expect(await memoised('grant:1', async () => 'grant from the table')).toBe('grant row');

    let finishRead!: () => void;
    const slow = memoised('token:2', async (bringAlong) => {
      await new Promise<void>((resolve) => {
        finishRead = resolve;
      });
      bringAlong('grant:2', 'old grant');
      return 'old token';
    });
    await writing('other:', write);
    finishRead();
    expect(await slow).toBe('old token');
    expect(await memoised('token:2', async () => 'new token')).toBe('new token');
    expect(await memoised('grant:2', async () => 'grant from the table')).toBe('grant from the table');
  });
});
