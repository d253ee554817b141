import fs from 'node:fs/promises';
import { renderLetters } from '../letter/letter.ts';
import { CliError } from './args.ts';

/** A letter as the CLI has it from the admin API: `issuedAt` with the university's offset, as the API writes instants. */
export interface LetterData {
  name: string;
  commonId: string;
  password: string;
  serverUrl: string;
  issuedAt: string;
}

const OFFSET = /([+-]\d{2}:\d{2}|Z)$/;

/** Fails (exit 1) when the letter file exists: checked before an account is changed. */
export async function assertLetterAbsent(file: string): Promise<void> {
  if (
    await fs.stat(file).then(
      () => true,
      () => false,
    )
  )
    throw new CliError(`${file} already exists; not overwriting it`);
}

/** Writes a letter (src/letter/letter.ts) readable by the owner only, never replacing an existing file. */
export async function writeLetter(file: string, data: LetterData): Promise<void> {
  const offset = OFFSET.exec(data.issuedAt)?.[1];
  if (!offset) throw new Error(`not an instant of the admin API: ${data.issuedAt}`);
  const html = await renderLetters([{ ...data, timeZone: offset === 'Z' ? 'UTC' : offset }]);
  try {
    await fs.writeFile(file, html, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(code === 'EEXIST' ? `${file} already exists; not overwriting it` : `cannot write ${file}: ${(error as Error).message}`);
  }
}
