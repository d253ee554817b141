import fs from 'node:fs/promises';
import path from 'node:path';
import { Eta } from 'eta';
import { viewsDir } from '../shared/views-dir.ts';
import { formatDate, translator } from '../i18n/i18n.ts';

/**
 * The printable notification letter (ja/en) that hands a new account or a reissued password to its
 * person: one module for the CLI's letter files and the console's downloads, so they never differ.
 */
export interface LetterData {
  name: string;
  commonId: string;
  password: string;
  /** The server's base URL; the letter points to its /account page. */
  serverUrl: string;
  /** When the password was set: the letter's date. */
  issuedAt: Date | string;
  /** The university's time zone, or the offset written into `issuedAt` ("+09:00"), for that date. */
  timeZone: string;
}

const STYLESHEET_LINK = '<link rel="stylesheet" href="/static/akamon.css">';

let eta: Eta | undefined;
let stylesheet: string | undefined;

/** A link on the screen above the letters (not printed): the console's way back to the account. */
export interface LetterBack {
  url: string;
  label: string;
  lang: string;
}

/**
 * One HTML document with a letter per account, each on its own printed page. The stylesheet is
 * inlined so that the file prints the same when opened from disk (a saved download, a letter file).
 */
export async function renderLetters(letters: readonly LetterData[], back?: LetterBack): Promise<string> {
  eta ??= new Eta({ views: viewsDir, autoEscape: true, cache: true });
  stylesheet ??= await fs.readFile(path.join(viewsDir, 'static', 'akamon.css'), 'utf8').catch(() => '');
  const html = eta.render('letter', {
    back,
    tja: translator('ja'),
    ten: translator('en'),
    letters: letters.map((data) => ({
      name: data.name,
      commonId: data.commonId,
      password: data.password,
      url: `${data.serverUrl}/account`,
      date: { ja: formatDate('ja', data.issuedAt, data.timeZone), en: formatDate('en', data.issuedAt, data.timeZone) },
    })),
  });
  return stylesheet && !stylesheet.includes('</style') ? html.replace(STYLESHEET_LINK, `<style>\n${stylesheet}\n</style>`) : html;
}
