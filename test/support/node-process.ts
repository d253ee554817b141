import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

/** An Akamon node as operators run it: `node src/main.ts` in a process of its own. */
export interface NodeProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Every line it wrote (JSON log lines and plain stderr). */
  readonly lines: string[];
  /** Set once the process has ended, with its exit code or signal. */
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  stop(): Promise<void>;
}

export async function startNode(options: { port: number; env: Record<string, string> }): Promise<NodeProcess> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'akamon-node-'));
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', MAIN], {
    env: {
      PATH: process.env.PATH,
      PORT: String(options.port),
      AKAMON_LISTEN_HOST: '127.0.0.1',
      AKAMON_DATA_DIR: dataDir,
      AKAMON_DEV_IDV: 'false',
      AKAMON_ARGON2_MEMORY_KIB: '1024',
      AKAMON_ARGON2_ITERATIONS: '1',
      AKAMON_LOG_LEVEL: 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const node: NodeProcess = {
    url: `http://127.0.0.1:${options.port}`,
    child,
    lines: [],
    async stop() {
      if (!node.exit) {
        const ended = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await ended;
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop()!;
      node.lines.push(...parts.filter(Boolean));
    });
  }
  child.on('exit', (code, signal) => {
    node.exit = { code, signal };
  });
  const deadline = Date.now() + 30_000;
  while (!node.lines.some((line) => line.includes('"akamon ready"'))) {
    if (node.exit) throw new Error(`the node exited before it was ready (${JSON.stringify(node.exit)}):\n${node.lines.join('\n')}`);
    if (Date.now() > deadline) throw new Error(`the node was not ready within 30 s:\n${node.lines.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return node;
}
