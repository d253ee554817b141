import type { Context } from 'koa';
import type { MessageKey } from '../i18n/en.ts';
import type { Translate } from '../i18n/i18n.ts';
import type { SendOutcome } from '../mfa/code-sender.ts';
import type { ThrottleState } from '../throttle/login-throttle.ts';
import type { CodeCheck } from '../mfa/otp-code.store.ts';
import { CODE_DELIVERY_RETRY_AFTER_SECONDS } from '../config/defaults.ts';

/**
 * The answer of every page to a code that could not be sent (by mail or to a phone): its text and
 * status, and the Retry-After that says when to try again. Too many sends: 429 until the limit
 * lets another through; the mail server or phone gateway refused: 503, a short wait.
 */
export function sendRefusal(ctx: Context, t: Translate, outcome: Exclude<SendOutcome, { ok: true }>, limited: MessageKey = 'mfa.phone_rate_limited'): { error: string; status: 429 | 503 } {
  if (outcome.reason === 'rate_limited') {
    ctx.set('Retry-After', String(outcome.waitSeconds));
    return { error: t(limited, { minutes: Math.max(1, Math.ceil(outcome.waitSeconds / 60)) }), status: 429 };
  }
  ctx.set('Retry-After', String(CODE_DELIVERY_RETRY_AFTER_SECONDS));
  return { error: t('mfa.phone_delivery_failed'), status: 503 };
}

/**
 * The answer of every page to a code refused unchecked because too many wrong ones came before:
 * 429, with Retry-After while the wait lasts (none once only an operator can lift the lock).
 */
export function lockedRefusal(ctx: Context, t: Translate, { blocked, waitSeconds }: ThrottleState): { error: string; status: 429 } {
  if (blocked) return { error: t('mfa.blocked'), status: 429 };
  ctx.set('Retry-After', String(waitSeconds));
  return { error: t('mfa.locked', { minutes: Math.max(1, Math.ceil(waitSeconds / 60)) }), status: 429 };
}

/** The answer of every page to a mailed code that did not pass: wrong, expired or used (400), or locked out (429). */
export function mailedCodeRefusal(
  ctx: Context,
  t: Translate,
  result: Exclude<CodeCheck, 'ok'> | { locked: ThrottleState },
  expired: MessageKey = 'mfa.code_expired',
): { error: string; status: 400 | 429 } {
  if (typeof result === 'object') return lockedRefusal(ctx, t, result.locked);
  return { error: t(result === 'wrong' ? 'mfa.wrong_email_code' : expired), status: 400 };
}
