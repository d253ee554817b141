import { execFileSync } from 'node:child_process';
import path from 'node:path';

// In a child process: lowering the priority of this process's own threads must not touch jest's.
const script = `
import fs from 'node:fs';
import argon2 from 'argon2';
import { lowerWorkerPriority } from ${JSON.stringify(path.resolve('src/password/hash-priority.ts'))};
await argon2.hash('start the thread pool', { type: argon2.argon2id, memoryCost: 1024, timeCost: 1 });
const lowered = lowerWorkerPriority(Number(process.argv[1]));
const nice = (tid) => Number(fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8').split(') ')[1].split(' ')[16]);
const threads = fs.readdirSync('/proc/self/task').map((tid) => ({ name: fs.readFileSync('/proc/self/task/' + tid + '/comm', 'utf8').trim(), nice: nice(tid), main: Number(tid) === process.pid }));
process.stdout.write(JSON.stringify({ lowered, threads }));
`;

function run(niceness: number): { lowered: number; threads: Array<{ name: string; nice: number; main: boolean }> } {
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script, String(niceness)], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } }));
}

test('the hashing threads run niced and the event loop thread keeps its priority', () => {
  const { lowered, threads } = run(10);
  const workers = threads.filter((t) => t.name.startsWith('libuv-worker'));
  expect(workers.length).toBeGreaterThan(0);
  expect(lowered).toBe(workers.length);
  expect(workers.every((t) => t.nice === 10)).toBe(true);
  const base = threads.find((t) => t.main)!.nice;
  expect(threads.filter((t) => !t.name.startsWith('libuv-worker')).every((t) => t.nice === base)).toBe(true);
});

test('niceness 0 changes nothing', () => {
  const { lowered, threads } = run(0);
  expect(lowered).toBe(0);
  const base = threads.find((t) => t.main)!.nice;
  expect(threads.every((t) => t.nice === base)).toBe(true);
});
