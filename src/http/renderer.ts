import { Eta } from 'eta';
import type { Context } from 'koa';
import { translator, type Locale } from '../i18n/i18n.ts';
import type { MessageKey } from '../i18n/en.ts';
import type { CsrfGuard } from './csrf.ts';
import { viewsDir } from '../shared/views-dir.ts';
import type { RetryLaterError } from '../shared/errors.ts';
import { errorAnswer, setRetryAfter } from './error-map.ts';
import { phraseBreaks } from './phrase-breaks.ts';

export interface PageData {
  [name: string]: unknown;
}

/** Renders a page in the request's language with the values every page needs. */
/** The language switch of a page: to the other language, then back to `back` (a path here). */
export function languageSwitchUrl(ctx: Context, back: string): string {
  return `/lang?to=${ctx.state.locale === 'ja' ? 'en' : 'ja'}&back=${encodeURIComponent(back)}`;
}

const DRAWN_AWAY = 'pageDrawnAway';

/**
 * Marks this request's page as drawn at an address that is not its own, as a POST's page is: the
 * authorization request drawing the sign-in's first step (interaction/router.ts). Its `pageUrl`
 * then becomes the browser's address and the language switch's way back.
 */
export function drawnAway(ctx: Context): void {
  ctx.state[DRAWN_AWAY] = true;
}

export class Renderer {
  readonly #eta: Eta;
  readonly #csrf: CsrfGuard;

  constructor(csrf: CsrfGuard) {
    // Compiled templates are kept in every mode: compiling a page on each request cost more CPU
    // than everything else the page does. Views are part of the release; edit, then restart.
    this.#eta = new Eta({ views: viewsDir, autoEscape: true, cache: true });
    this.#csrf = csrf;
  }

  /**
   * A page answering a form (a POST) names, as `pageUrl`, the address that shows it again: the
   * browser's address becomes it (a reload or a return through the history asks for that page
   * instead of sending the form again) and the language switch leads there. The form's own address
   * takes posts only; a page that names none switches language to `back` (where an error page
   * leads back to), else to the start page.
   */
  page(ctx: Context, view: string, titleKey: MessageKey, data: PageData = {}, status = 200): void {
    const locale: Locale = ctx.state.locale;
    const t = translator(locale);
    ctx.status = status;
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    const answersForm = ctx.state[DRAWN_AWAY] === true || (ctx.method !== 'GET' && ctx.method !== 'HEAD');
    const pageUrl = answersForm && typeof data.pageUrl === 'string' ? data.pageUrl : undefined;
    const back = typeof data.back === 'string' ? data.back : undefined;
    const html = this.#eta.render(view, {
      t,
      locale,
      title: t(titleKey),
      langUrl: languageSwitchUrl(ctx, answersForm ? (pageUrl ?? back ?? '/') : ctx.originalUrl),
      csrf: this.#csrf.token(ctx),
      requestId: ctx.state.requestId,
      nonce: ctx.state.nonce,
      ...data,
      pageUrl,
    });
    // English text too may sit on a Japanese page and vice versa: the marks go wherever Japanese is.
    ctx.body = phraseBreaks(html);
  }

  /** An error page; `back` (a local path, such as the page of the refused form) is its way on, else the start page. */
  error(ctx: Context, messageKey: MessageKey, status: number, back?: string): void {
    this.page(ctx, 'error', 'error.title', { message: translator(ctx.state.locale)(messageKey), back: back ?? null }, status);
  }

  /** "Try again in a moment" (an overload, a database outage, an address over its cap) with its status and Retry-After. */
  retryLater(ctx: Context, error: RetryLaterError): void {
    const { status, message, title = 'error.title' } = errorAnswer(error);
    setRetryAfter(ctx, error);
    this.page(ctx, 'busy', title, { message: translator(ctx.state.locale)(message) }, status);
  }
}
