import fs from 'node:fs';

// node bench/profile-summary.ts FILE.cpuprofile [--top N] [--since-us T]: where a V8 CPU profile
// (from `npm run bench -- --profile`) spends its time, by function and by package or source file;
// with --since-us, only from the monotonic clock's microsecond T on (bench/signin-steps.ts prints
// it where its measured sign-ins begin: V8's profile and Node's hrtime read the same clock).

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bench/profile-summary.ts FILE.cpuprofile [--top N]\n');
  process.exit(2);
}
// Piped into head, the reader may leave early: that is the end, not an error.
process.stdout.on('error', () => process.exit(0));
const option = (name: string) => (rest.includes(name) ? Number(rest[rest.indexOf(name) + 1]) : undefined);
const top = option('--top') || 25;
const since = option('--since-us') ?? 0;
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

/** The package (node_modules/NAME) or project file a frame belongs to. */
function owner(url: string): string {
  if (!url) return '(native)';
  const module = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (module) return module[1]!;
  if (url.startsWith('node:')) return url;
  const project = /\/((?:src|bench|test)\/.*)$/.exec(url);
  return project ? project[1]! : url;
}

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
const byOwner = new Map<string, number>();
let total = 0;
let sampledAt = profile.startTime;
profile.samples.forEach((id, i) => {
  const micros = profile.timeDeltas[i] ?? 0;
  sampledAt += micros;
  if (sampledAt < since) return;
  total += micros;
  const node = byId.get(id)!;
  const { functionName, url, lineNumber } = node.callFrame;
  const name = `${functionName || '(anonymous)'} ${owner(url)}:${lineNumber + 1}`;
  self.set(name, (self.get(name) ?? 0) + micros);
  byOwner.set(owner(url), (byOwner.get(owner(url)) ?? 0) + micros);
  // Inclusive time: once per distinct frame on the stack (recursion counts once).
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const frame = byId.get(at)!.callFrame;
    const key = `${frame.functionName || '(anonymous)'} ${owner(frame.url)}:${frame.lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + micros);
  }
});

const print = (title: string, map: Map<string, number>) => {
  process.stdout.write(`\n${title}\n`);
  for (const [name, micros] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${(micros / 1000).toFixed(0).padStart(8)} ms ${((micros / total) * 100).toFixed(1).padStart(5)}%  ${name}\n`);
  }
};
process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s sampled on the main thread\n`);
print('by package or file (self time)', byOwner);
print('by function (self time)', self);
print('by function (inclusive time)', inclusive);
