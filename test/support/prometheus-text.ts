/**
 * A strict reader of the Prometheus text exposition format (0.0.4), as a Prometheus server would
 * refuse it: every sample belongs to a family declared by `# TYPE` before it, names and label names
 * follow the data model, label values are quoted with only \\, \" and \n escaped, no series appears
 * twice, and a histogram's buckets are cumulative and end at +Inf equal to its _count. Written here
 * rather than taken from npm: the parsers there are lenient and unmaintained.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | undefined;
}

export interface Exposition {
  families: Map<string, Family>;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function fail(line: number, message: string): never {
  throw new Error(`exposition line ${line}: ${message}`);
}

/** As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case (prom-client writes `Nan`). */
function parseValue(text: string, line: number): number {
  if (/^\+?inf(inity)?$/i.test(text)) return Number.POSITIVE_INFINITY;
  if (/^-inf(inity)?$/i.test(text)) return Number.NEGATIVE_INFINITY;
  if (/^nan$/i.test(text)) return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) fail(line, `not a number: "${text}"`);
  return Number(text);
}

/** Reads `{a="x",b="y"}` from `text` at `start` (the brace); returns the labels and the index after the closing brace. */
function parseLabels(text: string, start: number, line: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  while (text[i] !== '}') {
    const name = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i))?.[0];
    if (!name || !LABEL_NAME.test(name)) fail(line, `bad label name at "${text.slice(i, i + 20)}"`);
    if (name in labels) fail(line, `label ${name} twice`);
    i += name.length;
    if (text[i] !== '=' || text[i + 1] !== '"') fail(line, `label ${name} without ="value"`);
    i += 2;
    let value = '';
    for (;;) {
      const c = text[i];
      if (c === undefined) fail(line, 'unterminated label value');
      if (c === '"') break;
      if (c === '\\') {
        const next = text[i + 1];
        if (next === '\\') value += '\\';
        else if (next === '"') value += '"';
        else if (next === 'n') value += '\n';
        else fail(line, `bad escape \\${next}`);
        i += 2;
        continue;
      }
      value += c;
      i += 1;
    }
    labels[name] = value;
    i += 1;
    if (text[i] === ',') i += 1;
    else if (text[i] !== '}') fail(line, `expected , or } after label ${name}`);
  }
  return { labels, end: i + 1 };
}

/** The family a sample name belongs to: itself, or a histogram's or summary's _bucket/_sum/_count. */
function familyOf(name: string, families: Map<string, Family>): string | undefined {
  if (families.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  const family = families.get(base);
  if (family && (family.type === 'histogram' || family.type === 'summary') && (name !== `${base}_bucket` || family.type === 'histogram')) return base;
  return undefined;
}

export function parseExposition(text: string): Exposition {
  const families = new Map<string, Family>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  if (text.length > 0 && !text.endsWith('\n')) fail(0, 'the exposition must end with a newline');
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (raw === '') return;
    if (raw.startsWith('#')) {
      const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(raw);
      if (!meta) return; // a plain comment
      const [, kind, name, rest = ''] = meta;
      if (!METRIC_NAME.test(name)) fail(line, `bad metric name ${name}`);
      const family = families.get(name) ?? { type: 'untyped', help: undefined };
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) fail(line, `unknown type ${rest}`);
        if (samples.some((s) => familyOf(s.name, families) === name)) fail(line, `TYPE of ${name} after its samples`);
        family.type = rest as Family['type'];
      } else {
        family.help = rest;
      }
      families.set(name, family);
      return;
    }
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(raw)?.[0];
    if (!name) fail(line, `bad sample "${raw.slice(0, 60)}"`);
    let labels: Record<string, string> = {};
    let rest = raw.slice(name.length);
    if (rest.startsWith('{')) {
      const parsed = parseLabels(raw, name.length, line);
      labels = parsed.labels;
      rest = raw.slice(parsed.end);
    }
    const parts = rest.split(' ');
    if (parts[0] !== '' || parts.length < 2 || parts.length > 3) fail(line, `expected " value [timestamp]" after the series, got "${rest}"`);
    const value = parseValue(parts[1], line);
    if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) fail(line, `bad timestamp ${parts[2]}`);
    const family = familyOf(name, families);
    if (!family || families.get(family)?.type === 'untyped') fail(line, `sample ${name} before a # TYPE of its family`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) fail(line, `series ${key} twice`);
    seen.add(key);
    samples.push({ name, labels, value });
  });
  checkHistograms(families, samples);
  return { families, samples };
}

function checkHistograms(families: Map<string, Family>, samples: Sample[]): void {
  for (const [name, family] of families) {
    if (family.type !== 'histogram') continue;
    const series = new Map<string, Array<{ le: number; value: number }>>();
    for (const s of samples.filter((x) => x.name === `${name}_bucket`)) {
      if (s.labels.le === undefined) throw new Error(`${name}_bucket without le`);
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      series.set(key, [...(series.get(key) ?? []), { le: parseValue(le, 0), value: s.value }]);
    }
    for (const [key, buckets] of series) {
      buckets.sort((a, b) => a.le - b.le);
      if (buckets.at(-1)?.le !== Number.POSITIVE_INFINITY) throw new Error(`${name}${key}: no +Inf bucket`);
      buckets.reduce((previous, bucket) => {
        if (bucket.value < previous) throw new Error(`${name}${key}: buckets not cumulative`);
        return bucket.value;
      }, 0);
      const count = samples.find((s) => s.name === `${name}_count` && JSON.stringify(Object.entries(s.labels).sort()) === key);
      if (count?.value !== buckets.at(-1)?.value) throw new Error(`${name}${key}: _count differs from the +Inf bucket`);
    }
  }
}

/** The value of one series (0 when absent, as a counter that never moved is). */
export function seriesValue(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels);
  const sample = exposition.samples.find((s) => s.name === name && Object.keys(s.labels).length === wanted.length && wanted.every(([k, v]) => s.labels[k] === v));
  return sample?.value ?? 0;
}
