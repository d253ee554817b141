/**
 * Runs the periodic batch jobs on a timer (removing expired rows, applying scheduled revocations)
 * in small batches, so that no single statement holds locks or scans for long. Each task handles
 * at most `batch` rows per call and returns how many it did.
 */
export type SweepTask = (batch: number) => Promise<number>;

export class Sweeper {
  #timer: NodeJS.Timeout | undefined;
  readonly #tasks: SweepTask[];
  readonly #batch: number;
  readonly #maxBatchesPerRun: number;

  constructor(tasks: SweepTask[], batch = 1000, maxBatchesPerRun = 20) {
    this.#tasks = tasks;
    this.#batch = batch;
    this.#maxBatchesPerRun = maxBatchesPerRun;
  }

  /** One bounded pass over every task; returns the number of rows removed. */
  async sweep(): Promise<number> {
    let total = 0;
    for (const task of this.#tasks) {
      for (let i = 0; i < this.#maxBatchesPerRun; i += 1) {
        const removed = await task(this.#batch);
        total += removed;
        if (removed < this.#batch) break;
      }
    }
    return total;
  }

  start(intervalSeconds: number, onError: (error: unknown) => void): void {
    this.#timer = setInterval(() => this.sweep().catch(onError), intervalSeconds * 1000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
