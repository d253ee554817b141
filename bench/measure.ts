import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Latencies in milliseconds, summarised. */
export interface Summary {
  count: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function summarise(latencies: number[], errors: number, seconds: number): Summary {
  const sorted = [...latencies].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    count: latencies.length,
    errors,
    seconds: round(seconds),
    perSecond: round(latencies.length / seconds),
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
  };
}

/**
 * Runs `task` from `concurrency` workers until `count` tasks have run or `seconds` have passed.
 * A task resolves true for success; a thrown error or false counts as an error. A task that also
 * does work of the load generator's own (an SP signing its request) resolves to the milliseconds
 * of the part that is measured instead.
 */
export async function load(options: { concurrency: number; count?: number; seconds?: number }, task: (i: number) => Promise<boolean | number>): Promise<Summary> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const deadline = options.seconds === undefined ? Infinity : started + options.seconds * 1000;
  const limit = options.count ?? Infinity;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < limit && performance.now() < deadline) {
        const i = next++;
        const t0 = performance.now();
        let result: boolean | number = false;
        try {
          result = await task(i);
        } catch {
          result = false;
        }
        if (result === false) errors += 1;
        else latencies.push(result === true ? performance.now() - t0 : result);
      }
    }),
  );
  return summarise(latencies, errors, (performance.now() - started) / 1000);
}

const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** CPU seconds a process's main thread has run so far in user and in kernel mode (the kernel's share is its system calls: sockets, epoll, memory). */
export function mainThreadUserSystem(pid: number): { user: number; system: number } {
  const fields = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) / TICKS, system: Number(fields[12]) / TICKS };
}

/** The peak resident set size of a process, in MiB. */
export function peakRssMiB(pid: number): number {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return Math.round(Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) / 1024);
}

/** Nanoseconds each kind of thread of a process has run so far (the scheduler's count, finer than ticks). */
export function threadNanoseconds(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = task === String(pid) ? 'main' : fs.readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim().replace(/\d+$/, '');
      byName.set(name, (byName.get(name) ?? 0) + Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // A thread that ended between the listing and the read.
    }
  }
  return byName;
}

/** Nanoseconds all threads of a process have run so far. */
export function runNanoseconds(pid: number): number {
  return [...threadNanoseconds(pid).values()].reduce((sum, n) => sum + n, 0);
}
