import fs from 'node:fs/promises';
import path from 'node:path';
import { Eta } from 'eta';
import { viewsDir } from '../shared/views-dir.ts';
import { translator } from '../i18n/i18n.ts';
import { CliError } from './args.ts';
import { dayOf } from './output.ts';

export interface LetterData {
  name: string;
  commonId: string;
  password: string;
  /** The server's base URL; the letter points to its /account page. */
  serverUrl: string;
  /** When the password was set, as the admin API gives it (with the university's offset): the letter's date. */
  issuedAt: string;
}

const STYLESHEET_LINK = '<link rel="stylesheet" href="/static/akamon.css">';

let eta: Eta | undefined;
let stylesheet: string | undefined;

/**
 * The printable notification letter (HTML) for a new account or a reissued password. The
 * stylesheet is inlined so that the file prints the same when opened from disk.
 */
export async function renderLetter(data: LetterData): Promise<string> {
  eta ??= new Eta({ views: viewsDir, autoEscape: true, cache: true });
  stylesheet ??= await fs.readFile(path.join(viewsDir, 'static', 'akamon.css'), 'utf8').catch(() => '');
  const html = eta.render('letter', {
    tja: translator('ja'),
    ten: translator('en'),
    name: data.name,
    commonId: data.commonId,
    password: data.password,
    url: `${data.serverUrl}/account`,
    date: { ja: dayOf(data.issuedAt, 'ja'), en: dayOf(data.issuedAt, 'en') },
  });
  return stylesheet && !stylesheet.includes('</style') ? html.replace(STYLESHEET_LINK, `<style>\n${stylesheet}\n</style>`) : html;
}

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

/** Writes a letter readable by the owner only, never replacing an existing file. */
export async function writeLetter(file: string, data: LetterData): Promise<void> {
  const html = await renderLetter(data);
  try {
    await fs.writeFile(file, html, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(code === 'EEXIST' ? `${file} already exists; not overwriting it` : `cannot write ${file}: ${(error as Error).message}`);
  }
}
