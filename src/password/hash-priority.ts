import fs from 'node:fs';
import os from 'node:os';

/**
 * Lowers the scheduling priority of libuv's worker threads, where argon2 runs. In a login storm
 * the hashing queue never empties; at equal priority it would take half of every core from the
 * requests of people already signed in (token refreshes, page loads). Niced, hashing gets what
 * those leave, and the queue limit turns the excess away. Linux names the threads; elsewhere
 * nothing is changed. Returns how many threads were lowered.
 */
export function lowerWorkerPriority(niceness: number): number {
  if (niceness === 0) return 0;
  let lowered = 0;
  let tasks: string[];
  try {
    tasks = fs.readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  for (const tid of tasks) {
    try {
      if (!fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith('libuv-worker')) continue;
      // On Linux a thread id names just that thread.
      os.setPriority(Number(tid), niceness);
      lowered += 1;
    } catch {
      // A thread that ended, or a system that refuses: hashing keeps its priority.
    }
  }
  return lowered;
}
