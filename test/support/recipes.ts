import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunningAkamon } from './akamon.ts';
import { runCli } from './processes.ts';

/**
 * The relying-party recipes in docs/relying-parties/ as their tests run them: each code block
 * marked `<!-- tested: NAME -->` on the line before its fence, so that what an operator copies is
 * what was tested.
 */

const DOCS = fileURLToPath(new URL('../../docs/relying-parties/', import.meta.url));

/** The marked code blocks of a recipe, by name. */
export function recipeBlocks(file: string): Map<string, string> {
  const lines = fs.readFileSync(path.join(DOCS, file), 'utf8').split('\n');
  const blocks = new Map<string, string>();
  lines.forEach((line, i) => {
    const name = /^<!-- tested: ([\w-]+) -->$/.exec(line)?.[1];
    if (!name) return;
    if (!/^```/.test(lines[i + 1] ?? '')) throw new Error(`${file}: the block "${name}" must start on the line after its marker`);
    const end = lines.indexOf('```', i + 2);
    if (end < 0) throw new Error(`${file}: the block "${name}" has no closing fence`);
    blocks.set(name, lines.slice(i + 2, end).join('\n'));
  });
  return blocks;
}

/** One marked block; a missing one fails the test that needs it. */
export function block(blocks: Map<string, string>, name: string): string {
  const text = blocks.get(name);
  if (text === undefined) throw new Error(`the recipe has no block marked "${name}"`);
  return text;
}

/**
 * The recipe's example values replaced by the test's. Every example value must occur, so that a
 * recipe edited without its test (or the other way round) fails instead of testing something else.
 */
export function fill(text: string, values: Record<string, string>): string {
  let filled = text;
  for (const [example, actual] of Object.entries(values)) {
    if (!filled.includes(example)) throw new Error(`the recipe block no longer contains "${example}":\n${text}`);
    filled = filled.replaceAll(example, actual);
  }
  return filled;
}

/**
 * The arguments of the `npx akamon ...` command in a shell block (lines joined at a trailing
 * backslash, comments dropped, single or double quotes around a word), without `npx akamon`.
 */
export function cliArguments(shell: string): string[] {
  const command = shell
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const words = [...command.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
  if (words[0] !== 'npx' || words[1] !== 'akamon') throw new Error(`not an "npx akamon" command: ${command}`);
  return words.slice(2);
}

/** Runs a recipe's `register` block (an `npx akamon client create`) with `values` filled in: the client it made. */
export async function registerFromRecipe(akamon: RunningAkamon, blocks: Map<string, string>, values: Record<string, string>): Promise<{ clientId: string; clientSecret: string }> {
  const registered = await runCli({ url: akamon.url, token: akamon.operatorToken }, cliArguments(fill(block(blocks, 'register'), values)));
  if (registered.code !== 0) throw new Error(`client create exited ${registered.code}: ${registered.stderr}`);
  return JSON.parse(registered.stdout) as { clientId: string; clientSecret: string };
}
