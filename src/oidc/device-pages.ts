import type { Context } from 'koa';
import type { ErrorOut, KoaContextWithOIDC } from 'oidc-provider';
import type { MessageKey } from '../i18n/en.ts';
import { translator } from '../i18n/i18n.ts';
import { languageSwitchUrl, type Renderer } from '../http/renderer.ts';
import { RetryLaterError } from '../shared/errors.ts';
import { clientDisplayName } from '../client/client-settings.ts';

/** What the code page says after an answer of the provider, by the error it re-rendered the page for, and its status. */
const OUTCOMES: Record<string, { message: MessageKey; status: number; invalid: boolean }> = {
  NoCodeError: { message: 'device.wrong_code', status: 400, invalid: true },
  NotFoundError: { message: 'device.wrong_code', status: 400, invalid: true },
  ExpiredError: { message: 'device.expired_code', status: 400, invalid: true },
  AlreadyUsedError: { message: 'device.used_code', status: 400, invalid: true },
  // The person cancelled on the confirmation page or left a step (the 53003 page included): the device gets access_denied.
  AbortedError: { message: 'device.cancelled', status: 200, invalid: false },
};

/** The requests whose entered code the provider looked up and found no live, unused one for. */
const missedCodes = new WeakSet<object>();

/**
 * Whether this request's code was looked up and missed (wrong, expired or used), as opposed to a
 * form refused before any lookup (expired, or the database busy): only a miss is a guess.
 */
export const codeMissed = (ctx: object): boolean => missedCodes.has(ctx);

/**
 * The device flow's pages (RFC 8628 verification at /device), drawn in Akamon's style and language
 * like the provider's other pages (pages.ts): enter the code, confirm it for the client, and "you
 * can return to your device". The forms carry the provider's own CSRF token (its `xsrf` field, kept
 * in the browser's session); the sign-in between confirmation and success is the ordinary
 * interaction, through every step of the pipeline.
 */
export function devicePages(renderer: Renderer) {
  const koa = (ctx: KoaContextWithOIDC) => ctx as unknown as Context;
  const action = (ctx: KoaContextWithOIDC) => ctx.oidc.urlFor('code_verification');
  const xsrf = (ctx: KoaContextWithOIDC) => String(ctx.oidc.session?.state?.secret ?? '');
  // A language switch goes back to the code page: a form posted cannot be shown again by a GET.
  const langUrl = (ctx: KoaContextWithOIDC) => languageSwitchUrl(koa(ctx), '/device');

  return {
    /** The code page: first shown, and again after a wrong, expired or used code, a cancel, or an expired form. */
    userCodeInputSource(ctx: KoaContextWithOIDC, _form: string, out?: ErrorOut, error?: Error) {
      if (error instanceof RetryLaterError) return renderer.retryLater(koa(ctx), error);
      const t = translator(koa(ctx).state.locale);
      const known = error && OUTCOMES[error.name];
      if (known?.invalid) missedCodes.add(ctx);
      // An expired or foreign form (the provider's xsrf check), or a sign-in whose interaction is gone.
      const answer = known ?? (out?.error === 'invalid_request' ? { message: 'device.form_expired' as const, status: 400, invalid: false } : undefined);
      if (error && !answer) return renderer.error(koa(ctx), 'error.generic', Math.max(ctx.status, 400));
      renderer.page(
        koa(ctx),
        'device-code',
        'device.title',
        {
          action: action(ctx),
          xsrf: xsrf(ctx),
          userCode: (error as { userCode?: string } | undefined)?.userCode ?? '',
          message: answer ? t(answer.message) : null,
          invalid: answer?.invalid ?? false,
          langUrl: langUrl(ctx),
        },
        answer?.status ?? 200,
      );
    },
    /** The code was found: which client asks, and is this the code the device shows? */
    userCodeConfirmSource(ctx: KoaContextWithOIDC, _form: string, client: { clientName?: string; clientId: string }, _deviceInfo: unknown, userCode: string) {
      renderer.page(koa(ctx), 'device-confirm', 'device.confirm_title', {
        action: action(ctx),
        xsrf: xsrf(ctx),
        userCode,
        clientName: clientDisplayName(client, koa(ctx).state.locale),
        // Back to the code filled in: the provider posts it again and this page comes back in the other language.
        langUrl: languageSwitchUrl(koa(ctx), `/device?user_code=${userCode}`),
      });
    },
    /** Every step passed: the device gets its tokens at its next poll. */
    successSource(ctx: KoaContextWithOIDC) {
      renderer.page(koa(ctx), 'device-done', 'device.done_title', { clientName: ctx.oidc.client && clientDisplayName(ctx.oidc.client, koa(ctx).state.locale), langUrl: langUrl(ctx) });
    },
  };
}

export type DevicePages = ReturnType<typeof devicePages>;
