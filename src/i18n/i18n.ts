import { en, type MessageKey, type Messages } from './en.ts';
import { ja } from './ja.ts';
import { wallClock, type WallClock } from '../shared/time-zone.ts';

export type Locale = 'en' | 'ja';
export const LOCALES: readonly Locale[] = ['ja', 'en'];
const catalogues: Record<Locale, Messages> = { en, ja };

export type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

/**
 * `{name}` is replaced by the value; `{name:one|other}` by the word that agrees with the number
 * (English: "Wait {minutes} {minutes:minute|minutes}" says 1 minute, 2 minutes). Japanese needs no
 * plural forms, and its texts have none.
 */
export function translator(locale: Locale): Translate {
  return translators[locale];
}

function makeTranslator(locale: Locale): Translate {
  const messages = catalogues[locale];
  const plural = new Intl.PluralRules(locale);
  return (key, vars) => {
    const text = messages[key] ?? en[key] ?? key;
    if (!vars) return text;
    return text
      .replace(/\{(\w+):([^|{}]*)\|([^{}]*)\}/g, (whole, name: string, one: string, other: string) => (name in vars ? (plural.select(Number(vars[name])) === 'one' ? one : other) : whole))
      .replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
  };
}

// One per language, made once: a request asks for its translator several times, and an
// Intl.PluralRules costs far more to make than a text to look up.
const translators: Record<Locale, Translate> = { en: makeTranslator('en'), ja: makeTranslator('ja') };

export function isLocale(value: unknown): value is Locale {
  return value === 'en' || value === 'ja';
}

/**
 * The page language: ui_locales of the authorization request first, then the language the person
 * chose with the switch (a cookie), then the browser's Accept-Language, then Japanese.
 */
export function negotiateLocale(uiLocales: string | undefined, cookie: string | undefined, acceptLanguage: string | undefined): Locale {
  for (const tag of (uiLocales ?? '').split(/\s+/)) {
    const base = tag.toLowerCase().split('-')[0];
    if (isLocale(base)) return base;
  }
  if (isLocale(cookie)) return cookie;
  const ranked = (acceptLanguage ?? '')
    .split(',')
    .slice(0, 20)
    .map((part, index) => {
      const [tag, ...params] = part.trim().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { base: tag.toLowerCase().split('-')[0], q: q ? Number(q.slice(2)) || 0 : 1, index };
    })
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const { base, q } of ranked) if (q > 0 && isLocale(base)) return base;
  return 'ja';
}

const MONTHS_EN = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * A day as people read it, in their language and the university's time zone: `4 Dec 2026`,
 * `2026年12月4日`. Built from the zone's wall clock rather than toLocaleString, so that no reader
 * meets the day-first/month-first ambiguity of `04/12/2026` and the text does not move with the
 * ICU data of the server (en-GB says `Sept` in some versions).
 */
export function formatDate(locale: Locale, value: Date | string | number, timeZone: string): string {
  return day(locale, wallClock(value, timeZone));
}

function day(locale: Locale, w: WallClock): string {
  return locale === 'ja' ? `${w.year}年${w.month}月${w.day}日` : `${w.day} ${MONTHS_EN[w.month - 1]} ${w.year}`;
}

/** A moment as people read it: `4 Dec 2026, 19:08`, `2026年12月4日 19:08` (24-hour clock, university time zone). */
export function formatDateTime(locale: Locale, value: Date | string | number, timeZone: string): string {
  const w = wallClock(value, timeZone);
  const time = `${String(w.hour).padStart(2, '0')}:${String(w.minute).padStart(2, '0')}`;
  return locale === 'ja' ? `${day(locale, w)} ${time}` : `${day(locale, w)}, ${time}`;
}
