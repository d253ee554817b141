import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { negotiateLocale, type Locale } from '../i18n/i18n.ts';
import type { MessageKey } from '../i18n/en.ts';
import { DomainError, RetryLaterError } from '../shared/errors.ts';
import { errorAnswer } from './error-map.ts';
import type { Renderer } from './renderer.ts';
import { inRequestMemo } from '../shared/request-memo.ts';
import { HSTS_MAX_AGE_SECONDS } from '../config/defaults.ts';
import { responseNonce } from '../crypto/tokens.ts';

/**
 * A request id (echoed as X-Request-Id), a child logger carrying it, one access log line, and
 * the scope of the request's shared reads (request-memo). The child is made only when a handler logs something, and the access line skips redaction: its
 * fields are fixed and none is secret, and the two cost more than all of a metadata request.
 */
export function requestContext(logger: Logger) {
  const access = logger.child({}, { redact: [] });
  return async (ctx: Context, next: Next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = /^[A-Za-z0-9._-]{8,64}$/.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    let log: Logger | undefined;
    Object.defineProperty(ctx.state, 'log', { get: () => (log ??= logger.child({ requestId })), enumerable: true });
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await inRequestMemo(next);
    } finally {
      // The path only: query strings can carry state, hints and codes.
      access.info({ requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(performance.now() - started), ip: ctx.ip }, 'request');
    }
  };
}

/** Security headers for every response, including a nonce-based Content-Security-Policy. */
export function securityHeaders(production: boolean) {
  return async (ctx: Context, next: Next) => {
    ctx.state.nonce = responseNonce();
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    // Akamon's own pages learn where a form was sent from (an error page's way back); no other site learns anything.
    ctx.set('Referrer-Policy', 'same-origin');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
    if (production) ctx.set('Strict-Transport-Security', `max-age=${HSTS_MAX_AGE_SECONDS}; includeSubDomains`);
    // Set before the handlers run: oidc-provider adds the hash of its form_post script to it.
    // form-action is left out on purpose: Chrome applies it to the redirect that follows a form
    // post, which would block the return to the relying party.
    ctx.set('Content-Security-Policy', `default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'nonce-${ctx.state.nonce}'; base-uri 'none'; frame-ancestors 'none'`);
    await next();
    // An answer that sets a cookie (a sign-in's redirect, the language switch) is never kept by a cache.
    if (ctx.response.get('Set-Cookie') && !ctx.response.get('Cache-Control')) ctx.set('Cache-Control', 'no-store');
  };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * In production every request must have come through the TLS proxy (X-Forwarded-Proto: https).
 * Plain HTTP is answered only for the health checks (the container's probe) and for the admin
 * API from the same machine and not through the proxy (the CLI inside the container).
 */
export function requireHttps(production: boolean) {
  return async (ctx: Context, next: Next) => {
    if (!production || ctx.secure || ctx.path === '/healthz' || ctx.path === '/readyz') return next();
    const local = LOOPBACK.has(ctx.req.socket.remoteAddress ?? '') && !ctx.get('x-forwarded-for') && !ctx.get('x-forwarded-proto');
    if (local && ctx.path.startsWith('/admin/api/')) return next();
    ctx.status = 400;
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = 'HTTPS is required / HTTPS で接続してください';
  };
}

/**
 * The language switch's cookie: `__Host-` on HTTPS (always so in production), so that a sibling
 * subdomain cannot plant a language on Akamon's pages.
 */
const languageCookie = (ctx: Context) => (ctx.secure ? '__Host-akamon_lang' : 'akamon_lang');

/**
 * The page language. A choice the person made with the language switch beats the relying
 * party's ui_locales hint (otherwise the switch would do nothing on such a sign-in).
 */
export function requestLocale(ctx: Context, uiLocales: unknown) {
  const chosen = ctx.cookies.get(languageCookie(ctx));
  return negotiateLocale(chosen ? undefined : typeof uiLocales === 'string' ? uiLocales : undefined, chosen, ctx.get('accept-language'));
}

/** GET /lang?to=en&back=/path: remembers the language chosen with the switch and goes back (to a path here only). */
export function languageSwitch() {
  return (ctx: Context) => {
    const to = ctx.query.to === 'en' ? 'en' : 'ja';
    const back = typeof ctx.query.back === 'string' && /^\/(?![/\\])/.test(ctx.query.back) ? ctx.query.back : '/';
    ctx.cookies.set(languageCookie(ctx), to, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, path: '/', maxAge: 365 * 86400 * 1000, signed: false });
    ctx.redirect(back);
  };
}

/** ctx.state.locale, worked out when first read: most requests (tokens, userinfo) never show a page. */
export function localeMiddleware() {
  return async (ctx: Context, next: Next) => {
    let locale: Locale | undefined;
    Object.defineProperty(ctx.state, 'locale', {
      get: () => (locale ??= requestLocale(ctx, ctx.query.ui_locales)),
      set: (chosen: Locale) => {
        locale = chosen;
      },
      enumerable: true,
      configurable: true,
    });
    await next();
  };
}

const STATUS_MESSAGES: Record<number, MessageKey> = {
  400: 'error.bad_request',
  403: 'error.csrf',
  404: 'error.not_found',
  405: 'error.method_not_allowed',
  413: 'error.too_large',
  415: 'error.bad_request',
};

/**
 * Turns anything thrown by Akamon's own routes into a page with the status the error map declares,
 * and never shows a stack trace. Unexpected errors are logged with the request id.
 */
export function errorPages(renderer: Renderer) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      // A router's 404, or its 405 for a method it does not take (Allow kept): a page, not bare text.
      if ((ctx.status === 404 || ctx.status === 405) && !ctx.body) renderer.error(ctx, STATUS_MESSAGES[ctx.status]!, ctx.status);
    } catch (error) {
      if (error instanceof RetryLaterError) {
        ctx.state.log.warn({ errorCode: error.code, cause: (error.cause as Error | undefined)?.message }, `request answered ${errorAnswer(error).status}`);
        renderer.retryLater(ctx, error);
        return;
      }
      if (error instanceof DomainError) {
        const { status, message } = errorAnswer(error);
        if (status >= 500) ctx.state.log.error({ err: error }, 'request failed');
        renderer.error(ctx, message, status);
        return;
      }
      const status = (error as { status?: number }).status ?? 500;
      const expose = status < 500 && (error as { expose?: boolean }).expose !== false;
      if (!expose) ctx.state.log.error({ err: error }, 'request failed');
      const finalStatus = expose ? status : 500;
      renderer.error(ctx, STATUS_MESSAGES[finalStatus] ?? 'error.generic', finalStatus);
    }
  };
}

export function isDomainError(error: unknown, code?: string): error is DomainError {
  return error instanceof DomainError && (code === undefined || error.code === code);
}
