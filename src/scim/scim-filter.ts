import { ScimError } from './scim-error.ts';
import { SCIM_FILTER_LIMITS } from '../config/defaults.ts';
import { excerpt } from '../shared/text.ts';

/**
 * SCIM filters (RFC 7644 3.4.2.2): `userName eq "0123456789"`, `meta.lastModified gt "..."`,
 * `emails[type eq "work"]`, combined with and, or, not and parentheses. Parsed into a tree that the
 * list turns into SQL (scim-query.ts) and PATCH evaluates on values (scim-patch.ts). Filters come
 * from outside: their length, size and depth are bounded, and every refusal is `invalidFilter`.
 */
export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'lt' | 'ge' | 'le';
export type Value = string | number | boolean | null;

export type Filter =
  | { op: 'and' | 'or'; left: Filter; right: Filter }
  | { op: 'not'; filter: Filter }
  | { op: 'pr'; path: string }
  | { op: CompareOp; path: string; value: Value }
  /** `emails[type eq "work"]`: the inner filter applies to each value of the multi-valued attribute. */
  | { op: 'has'; path: string; filter: Filter };

const COMPARE = new Set<string>(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'lt', 'ge', 'le']);

type Token = { kind: 'word' | 'string' | 'number' | 'punct'; text: string; value?: Value };

// A JSON string, a number, an attribute path or keyword (URNs carry ":" and "."), or a bracket.
const TOKEN = /\s*(?:("(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w:.])|([A-Za-z][\w:.$-]*)|([()[\]]))/y;

const refuse = (detail: string): never => {
  throw new ScimError(400, 'invalidFilter', detail);
};

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(text);
    if (!match) return refuse(`the filter cannot be read at character ${at + 1}`);
    const [, str, num, word, punct] = match;
    if (str !== undefined) tokens.push({ kind: 'string', text: str, value: JSON.parse(str) as string });
    else if (num !== undefined) tokens.push({ kind: 'number', text: num, value: Number(num) });
    else if (word !== undefined) tokens.push({ kind: 'word', text: word });
    else tokens.push({ kind: 'punct', text: punct! });
    if (tokens.length > SCIM_FILTER_LIMITS.terms * 4) refuse(`the filter is too long: at most ${SCIM_FILTER_LIMITS.terms} comparisons`);
  }
  return tokens;
}

class Parser {
  readonly #tokens: Token[];
  #at = 0;
  #terms = 0;

  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  parse(): Filter {
    const filter = this.#or(0);
    if (this.#at < this.#tokens.length) refuse(`unexpected "${excerpt(this.#tokens[this.#at]!.text)}" in the filter`);
    return filter;
  }

  #peekWord(word: string): boolean {
    const token = this.#tokens[this.#at];
    return token?.kind === 'word' && token.text.toLowerCase() === word;
  }

  #expect(punct: string): void {
    const token = this.#tokens[this.#at];
    if (token?.kind !== 'punct' || token.text !== punct) refuse(`"${punct}" expected in the filter`);
    this.#at += 1;
  }

  #or(depth: number): Filter {
    let left = this.#and(depth);
    while (this.#peekWord('or')) {
      this.#at += 1;
      left = { op: 'or', left, right: this.#and(depth) };
    }
    return left;
  }

  #and(depth: number): Filter {
    let left = this.#unary(depth);
    while (this.#peekWord('and')) {
      this.#at += 1;
      left = { op: 'and', left, right: this.#unary(depth) };
    }
    return left;
  }

  #unary(depth: number): Filter {
    if (depth > SCIM_FILTER_LIMITS.depth) refuse(`the filter is nested too deeply (at most ${SCIM_FILTER_LIMITS.depth} levels)`);
    if (this.#peekWord('not')) {
      this.#at += 1;
      this.#expect('(');
      const filter = this.#or(depth + 1);
      this.#expect(')');
      return { op: 'not', filter };
    }
    const token = this.#tokens[this.#at];
    if (token?.kind === 'punct' && token.text === '(') {
      this.#at += 1;
      const filter = this.#or(depth + 1);
      this.#expect(')');
      return filter;
    }
    return this.#comparison(depth);
  }

  #comparison(depth: number): Filter {
    const path = this.#tokens[this.#at];
    if (path?.kind !== 'word') return refuse(path ? `an attribute name expected in the filter, not "${excerpt(path.text)}"` : 'the filter ends too early');
    this.#at += 1;
    this.#terms += 1;
    if (this.#terms > SCIM_FILTER_LIMITS.terms) refuse(`the filter is too long: at most ${SCIM_FILTER_LIMITS.terms} comparisons`);
    const next = this.#tokens[this.#at];
    if (next?.kind === 'punct' && next.text === '[') {
      this.#at += 1;
      const filter = this.#or(depth + 1);
      this.#expect(']');
      return { op: 'has', path: path.text, filter };
    }
    const op = next?.kind === 'word' ? next.text.toLowerCase() : '';
    this.#at += 1;
    if (op === 'pr') return { op: 'pr', path: path.text };
    if (!COMPARE.has(op)) return refuse(`an operator (eq, ne, co, sw, ew, gt, lt, ge, le, pr) expected after ${excerpt(path.text)}`);
    const operand = this.#tokens[this.#at];
    this.#at += 1;
    if (operand?.kind === 'string' || operand?.kind === 'number') return { op: op as CompareOp, path: path.text, value: operand.value! };
    const literal = operand?.kind === 'word' ? operand.text.toLowerCase() : '';
    if (literal === 'true' || literal === 'false') return { op: op as CompareOp, path: path.text, value: literal === 'true' };
    if (literal === 'null') return { op: op as CompareOp, path: path.text, value: null };
    return refuse(`a value ("text", a number, true, false or null) expected after ${excerpt(path.text)} ${op}`);
  }
}

export function parseFilter(text: string): Filter {
  if (text.length > SCIM_FILTER_LIMITS.length) refuse(`the filter is longer than ${SCIM_FILTER_LIMITS.length} characters`);
  const tokens = tokenize(text);
  if (tokens.length === 0) refuse('the filter is empty');
  return new Parser(tokens).parse();
}

/** A value's member by name, ignoring case as SCIM attribute names do. */
export function member(value: unknown, name: string): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const key = Object.keys(value).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : (value as Record<string, unknown>)[key];
}

function compare(op: CompareOp, actual: unknown, expected: Value): boolean {
  if (actual === undefined || actual === null) return op === 'ne' ? expected !== null : op === 'eq' && expected === null;
  if (typeof actual === 'string' && typeof expected === 'string') {
    const [a, e] = [actual.toLowerCase(), expected.toLowerCase()];
    const outcomes: Record<CompareOp, boolean> = { eq: a === e, ne: a !== e, co: a.includes(e), sw: a.startsWith(e), ew: a.endsWith(e), gt: a > e, lt: a < e, ge: a >= e, le: a <= e };
    return outcomes[op];
  }
  if (op === 'eq') return actual === expected;
  if (op === 'ne') return actual !== expected;
  return refuse(`${op} compares text only here`);
}

/**
 * Whether a value (one element of a multi-valued attribute, such as an email) meets the filter; the
 * sub-attributes compare case-insensitively, as those of emails are (RFC 7643 4.1.2).
 */
export function matches(filter: Filter, value: unknown): boolean {
  switch (filter.op) {
    case 'and':
      return matches(filter.left, value) && matches(filter.right, value);
    case 'or':
      return matches(filter.left, value) || matches(filter.right, value);
    case 'not':
      return !matches(filter.filter, value);
    case 'pr': {
      const actual = member(value, filter.path);
      return actual !== undefined && actual !== null && actual !== '' && !(Array.isArray(actual) && actual.length === 0);
    }
    case 'has':
      return refuse('a filter in brackets cannot hold another one');
    default:
      return compare(filter.op, member(value, filter.path), filter.value);
  }
}
