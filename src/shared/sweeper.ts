/**
 * Runs the periodic batch jobs on a timer (removing expired rows, applying scheduled revocations)
 * in small batches, so that no single statement holds locks or scans for long. Each task handles
 * at most `batch` rows per call and returns how many it did. Tasks are named (snake_case) so that
 * the metrics can say when each last finished.
 */
export type SweepTask = (batch: number) => Promise<number>;

export class Sweeper {
  #timer: NodeJS.Timeout | undefined;
  readonly #tasks: Record<string, SweepTask>;
  readonly #batch: number;
  readonly #maxBatchesPerRun: number;
  readonly #lastSuccess = new Map<string, Date>();

  constructor(tasks: Record<string, SweepTask>, batch = 1000, maxBatchesPerRun = 20) {
    this.#tasks = tasks;
    this.#batch = batch;
    this.#maxBatchesPerRun = maxBatchesPerRun;
  }

  /** One bounded pass over every task; returns the number of rows removed. */
  async sweep(): Promise<number> {
    let total = 0;
    for (const [name, task] of Object.entries(this.#tasks)) {
      for (let i = 0; i < this.#maxBatchesPerRun; i += 1) {
        const removed = await task(this.#batch);
        total += removed;
        if (removed < this.#batch) break;
      }
      this.#lastSuccess.set(name, new Date());
    }
    return total;
  }

  /** When each task last finished a pass without an error on this node. */
  lastSuccess(): ReadonlyMap<string, Date> {
    return this.#lastSuccess;
  }

  start(intervalSeconds: number, onError: (error: unknown) => void): void {
    this.#timer = setInterval(() => this.sweep().catch(onError), intervalSeconds * 1000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
