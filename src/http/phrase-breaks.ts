import type * as Budoux from 'budoux';
import { lazyModule } from '../shared/lazy-module.ts';

/**
 * Japanese line breaks at phrase boundaries. Japanese has no spaces, so a browser may break a line
 * between any two characters: a button or a heading can end with one character alone on its last
 * line ("確認して続 / 行"). BudouX (Google's phrase segmenter, a small model run on the server)
 * finds the phrase boundaries; a `<wbr>` marks each, and akamon.css keeps the rest of the text
 * together (`word-break: keep-all`) in the same elements. CSS alone (`word-break: auto-phrase`)
 * does this in Chromium only; this works in every browser.
 *
 * Only short texts are marked (buttons, button-styled links, headings, table headers, labels),
 * where a lone character shows most; paragraphs keep ordinary Japanese line breaking.
 *
 * BudouX is loaded on the first page with Japanese to mark (or by the warm-up after start), never
 * before the server is ready: every page is marked, and only a page served in the first moment
 * after start may wait for the load.
 */
const japaneseParser = lazyModule((require) => (require('budoux') as typeof Budoux).loadDefaultJapaneseParser());

/** The elements whose text is marked; their markup comes from our own templates, escaped. */
const SHORT_TEXT = /<(button|a|h1|h2|h3|th|label)(\s[^>]*)?>([\s\S]*?)<\/\1>/g;
const JAPANESE = /[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]/;
/** A character reference stays whole: a phrase boundary is never put inside `&amp;`. */
const REFERENCE = /(&(?:#\d+|#x[\da-f]+|\w+);)/i;

export function phraseBreaks(html: string): string {
  return html.replace(SHORT_TEXT, (whole, tag: string, attributes: string | undefined, inner: string) => {
    if (tag === 'a' && !/\bclass="[^"]*\bbutton\b/.test(attributes ?? '')) return whole;
    return `<${tag}${attributes ?? ''}>${inner.replace(/(^|>)([^<]+)/g, (_, end: string, text: string) => end + markText(text))}</${tag}>`;
  });
}

function markText(text: string): string {
  if (!JAPANESE.test(text)) return text;
  return text
    .split(REFERENCE)
    .map((part, i) => (i % 2 === 1 ? part : japaneseParser().parse(part).join('<wbr>')))
    .join('');
}
