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
  readonly #lastFailure = new Map<string, Date>();
  /** The sweep the timer started, while it runs: a slow one (a database away) is not overlapped by the next. */
  #running: Promise<unknown> | undefined;

  constructor(tasks: Record<string, SweepTask>, batch = 1000, maxBatchesPerRun = 20) {
    this.#tasks = tasks;
    this.#batch = batch;
    this.#maxBatchesPerRun = maxBatchesPerRun;
  }

  /**
   * One bounded pass over every task; returns the number of rows removed. A task that fails does
   * not keep the others from their turn (the embedded vacuum comes last): its error goes to
   * `onError` with the task's name, or without one is thrown once every task has had its turn.
   */
  async sweep(onError?: (error: unknown, task: string) => void): Promise<number> {
    let total = 0;
    let failure: { error: unknown } | undefined;
    for (const [name, task] of Object.entries(this.#tasks)) {
      try {
        total += await this.#run(task);
        this.#lastSuccess.set(name, new Date());
      } catch (error) {
        this.#lastFailure.set(name, new Date());
        if (onError) onError(error, name);
        else failure ??= { error };
      }
    }
    if (failure) throw failure.error;
    return total;
  }

  async #run(task: SweepTask): Promise<number> {
    let total = 0;
    for (let i = 0; i < this.#maxBatchesPerRun; i += 1) {
      const removed = await task(this.#batch);
      total += removed;
      if (removed < this.#batch) break;
    }
    return total;
  }

  /** When each task last finished a pass without an error on this node. */
  lastSuccess(): ReadonlyMap<string, Date> {
    return this.#lastSuccess;
  }

  /** When each task last failed on this node: also says which never succeeded. */
  lastFailure(): ReadonlyMap<string, Date> {
    return this.#lastFailure;
  }

  start(intervalSeconds: number, onError: (error: unknown, task: string) => void): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.sweep(onError)
        .catch(() => undefined)
        .finally(() => {
          this.#running = undefined;
        });
    }, intervalSeconds * 1000);
    this.#timer.unref();
  }

  /** Stops the timer; resolves once a sweep it started has ended (at shutdown, before the database closes). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}
