import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/**
 * Which CPUs the server gets and which the load generator keeps. On one machine the generator
 * would otherwise take CPU from the server it measures, so with two or more CPUs and `taskset`
 * the server gets the first half (rounded up) and the generator the rest.
 */
export interface CpuPlan {
  /** taskset lists, or undefined when nothing is pinned. */
  server?: string;
  generator?: string;
  serverCores: number;
}

function allowedCpus(): number[] {
  const line = fs
    .readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Cpus_allowed_list:'));
  if (!line) return [];
  return line
    .split(':')[1]!
    .trim()
    .split(',')
    .flatMap((part) => {
      const [from, to = from] = part.split('-').map(Number);
      return Array.from({ length: to! - from! + 1 }, (_, i) => from! + i);
    });
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function cpuPlan(serverCount?: number): CpuPlan {
  const cpus = allowedCpus();
  if (cpus.length < 2 || !hasTaskset()) return { serverCores: os.availableParallelism() };
  const count = Math.min(cpus.length - 1, Math.max(1, serverCount ?? Math.ceil(cpus.length / 2)));
  const server = cpus.slice(0, count);
  return { server: server.join(','), generator: cpus.slice(count).join(','), serverCores: server.length };
}

/** A command line run on the given CPUs (taskset execs it, so the pid is the command's own). */
export function onCpus(cpus: string | undefined, command: string, args: string[]): [string, string[]] {
  return cpus ? ['taskset', ['-c', cpus, command, ...args]] : [command, args];
}

/** Moves every thread of this process onto the given CPUs. */
export function pinSelf(cpus: string | undefined): void {
  if (cpus) execFileSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
}
