import { en, type MessageKey, type Messages } from './en.ts';
import { ja } from './ja.ts';

export type Locale = 'en' | 'ja';
export const LOCALES: readonly Locale[] = ['ja', 'en'];
const catalogues: Record<Locale, Messages> = { en, ja };

export type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

export function translator(locale: Locale): Translate {
  const messages = catalogues[locale];
  return (key, vars) => {
    const text = messages[key] ?? en[key] ?? key;
    return vars ? text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole)) : text;
  };
}

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

/** A moment as people read it on a page: in their language and the university's time zone. */
export function formatDateTime(locale: Locale, value: Date | string, timeZone: string): string {
  return new Date(value).toLocaleString(locale === 'ja' ? 'ja-JP' : 'en-GB', { timeZone });
}
