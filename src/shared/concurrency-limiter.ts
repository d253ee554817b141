import { OverloadedError } from './errors.ts';

/**
 * Runs at most `concurrency` tasks at once and queues at most `queueLimit` more; beyond that it
 * refuses at once, so a flood of expensive work (password hashing) is turned away quickly instead
 * of starving every other request.
 */
export class ConcurrencyLimiter {
  #running = 0;
  #shed = 0;
  readonly #queue: Array<() => void> = [];
  readonly concurrency: number;
  readonly queueLimit: number;

  constructor(concurrency: number, queueLimit: number) {
    this.concurrency = concurrency;
    this.queueLimit = queueLimit;
  }

  get pending(): number {
    return this.#queue.length;
  }

  get running(): number {
    return this.#running;
  }

  /** Tasks refused since start because the queue was full (the metrics' load-shed count). */
  get shed(): number {
    return this.#shed;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.concurrency) {
      if (this.#queue.length >= this.queueLimit) {
        this.#shed += 1;
        throw new OverloadedError(1);
      }
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    } else {
      this.#running += 1;
    }
    try {
      return await task();
    } finally {
      const next = this.#queue.shift();
      // The slot passes straight to the next waiter, so the running count is unchanged.
      if (next) next();
      else this.#running -= 1;
    }
  }
}
