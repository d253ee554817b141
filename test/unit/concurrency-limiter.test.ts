import { describe, expect, test } from '@jest/globals';
import { ConcurrencyLimiter } from '../../src/shared/concurrency-limiter.ts';
import { DomainError, OverloadedError } from '../../src/shared/errors.ts';

/** A task that stays running until released, recording how many run at once. */
function gauge() {
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  const releases = new Map<number, () => void>();
  const task = (n: number) => async () => {
    running += 1;
    peak = Math.max(peak, running);
    started.push(n);
    await new Promise<void>((resolve) => releases.set(n, resolve));
    running -= 1;
    return n;
  };
  return {
    task,
    started,
    release: (n: number) => releases.get(n)!(),
    get running() {
      return running;
    },
    get peak() {
      return peak;
    },
  };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ConcurrencyLimiter', () => {
  test('never runs more than `concurrency` tasks at once', async () => {
    const limiter = new ConcurrencyLimiter(3, 100);
    let running = 0;
    let peak = 0;
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        limiter.run(async () => {
          running += 1;
          peak = Math.max(peak, running);
          await new Promise((resolve) => setTimeout(resolve, 1 + (i % 4)));
          running -= 1;
          return i * 2;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(running).toBe(0);
    expect(results).toEqual(Array.from({ length: 40 }, (_, i) => i * 2));
  });

  test('queued tasks start in the order they were queued, one as each slot frees', async () => {
    const limiter = new ConcurrencyLimiter(2, 10);
    const g = gauge();
    const done = [0, 1, 2, 3, 4, 5].map((n) => limiter.run(g.task(n)));
    await tick();
    expect(g.started).toEqual([0, 1]);
    expect(limiter.pending).toBe(4);

    g.release(1);
    await tick();
    expect(g.started).toEqual([0, 1, 2]);
    expect(g.running).toBe(2);
    expect(limiter.pending).toBe(3);

    g.release(0);
    await tick();
    expect(g.started).toEqual([0, 1, 2, 3]);
    g.release(3);
    await tick();
    g.release(2);
    await tick();
    expect(g.started).toEqual([0, 1, 2, 3, 4, 5]);
    g.release(4);
    g.release(5);
    expect(await Promise.all(done)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(g.peak).toBe(2);
    expect(limiter.pending).toBe(0);
  });

  test('beyond queueLimit it throws OverloadedError at once, without running the task', async () => {
    const limiter = new ConcurrencyLimiter(1, 2);
    const g = gauge();
    const accepted = [0, 1, 2].map((n) => limiter.run(g.task(n)));
    await tick();
    expect(limiter.pending).toBe(2);

    let ran = false;
    const started = performance.now();
    const refusal = await limiter
      .run(async () => {
        ran = true;
      })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(performance.now() - started).toBeLessThan(50);
    expect(refusal).toBeInstanceOf(OverloadedError);
    expect(refusal).toBeInstanceOf(DomainError);
    expect((refusal as OverloadedError).code).toBe('overloaded');
    expect((refusal as OverloadedError).retryAfterSeconds).toBeGreaterThan(0);
    expect(ran).toBe(false);
    expect(limiter.pending).toBe(2);

    // Refused callers did not take a slot: the accepted ones all finish.
    g.release(0);
    await tick();
    g.release(1);
    await tick();
    g.release(2);
    expect(await Promise.all(accepted)).toEqual([0, 1, 2]);

    // And once the queue drained there is room again.
    await expect(limiter.run(async () => 'again')).resolves.toBe('again');
  });

  test('a queue limit of 0 refuses everything beyond the running tasks', async () => {
    const limiter = new ConcurrencyLimiter(2, 0);
    const g = gauge();
    const accepted = [0, 1].map((n) => limiter.run(g.task(n)));
    await expect(limiter.run(async () => 'x')).rejects.toBeInstanceOf(OverloadedError);
    g.release(0);
    g.release(1);
    await Promise.all(accepted);
    await expect(limiter.run(async () => 'x')).resolves.toBe('x');
  });

  test('a throwing task frees its slot and its error reaches the caller', async () => {
    const limiter = new ConcurrencyLimiter(1, 0);
    await expect(
      limiter.run(async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(limiter.run(async () => 'next')).resolves.toBe('next');

    // A task that throws synchronously (not an async function) frees its slot too.
    await expect(
      limiter.run((() => {
        throw new Error('sync boom');
      }) as () => Promise<never>),
    ).rejects.toThrow('sync boom');
    await expect(limiter.run(async () => 'after sync')).resolves.toBe('after sync');
  });

  test('a throwing task hands its slot to the next queued task', async () => {
    const limiter = new ConcurrencyLimiter(1, 5);
    let fail!: (error: Error) => void;
    const failing = limiter.run(
      () =>
        new Promise<never>((_, reject) => {
          fail = reject;
        }),
    );
    const order: string[] = [];
    const queued = [
      limiter.run(async () => {
        order.push('a');
      }),
      limiter.run(async () => {
        order.push('b');
      }),
    ];
    await tick();
    expect(order).toEqual([]);
    fail(new Error('x'));
    await expect(failing).rejects.toThrow('x');
    await Promise.all(queued);
    expect(order).toEqual(['a', 'b']);

    // The slot count is intact: a double release would let two tasks overlap here.
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 5 }, () =>
        limiter.run(async () => {
          running += 1;
          peak = Math.max(peak, running);
          await tick();
          running -= 1;
        }),
      ),
    );
    expect(peak).toBe(1);
  });
});
