import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { translator } from '../i18n/i18n.ts';
import type { Renderer } from '../http/renderer.ts';
import type { DeviceCodeLimits } from '../throttle/device-codes.ts';
import type { ThrottleState } from '../throttle/login-throttle.ts';
import { DEVICE_CODE_GRANT } from '../client/client-settings.ts';
import { codeMissed } from './device-pages.ts';

/**
 * The guessing limit of user codes (RFC 8628 section 5.1), in front of the provider's verification
 * endpoint: a code entered past its address's budget is not looked up, and the person gets a ja/en
 * page with 429 and Retry-After. Everyone's budget is charged only after the provider missed, so a
 * right code always reaches the confirmation page however many wrong ones others sent; past it, a
 * miss gets the same 429 page in place of "not right". A route of Akamon's own, so the page rules
 * (a refused input is a page, not JSON) hold for it; it hands every other request to the provider.
 */
export function deviceVerificationRoutes(limits: DeviceCodeLimits, renderer: Renderer, resumeCookie: string): Router {
  const router = new Router();
  // The provider's resume of a confirmed code (/device/<uid>) needs the cookie the confirmation set;
  // without any cookie the provider's own refusal fails (it saves a session it never made) with a
  // 500. An old link or a stray address has nothing to resume: back to the code page.
  router.get('/device/:uid', async (ctx: Context, next: Next) => {
    if (ctx.cookies.get(resumeCookie)) return next();
    ctx.status = 303;
    ctx.redirect('/device');
  });
  const tooMany = (ctx: Context, { waitSeconds }: ThrottleState, budget: 'address' | 'everyone') => {
    ctx.state.log.warn({ event: 'device.user_code_limited', budget, waitSeconds }, 'device user code refused: too many wrong codes');
    ctx.set('Retry-After', String(waitSeconds));
    const t = translator(ctx.state.locale);
    renderer.page(ctx, 'error', 'error.title', { message: t('device.too_many_codes', { minutes: Math.max(1, Math.ceil(waitSeconds / 60)) }) }, 429);
  };
  // The router matches as the provider's does (any letter case, a trailing slash), so no spelling of the path passes by.
  router.post('/device', async (ctx: Context, next: Next) => {
    const userCode = (ctx.request.body as Record<string, unknown> | undefined)?.user_code;
    if (typeof userCode !== 'string' || userCode.trim() === '') return next();
    const address = await limits.takeGuess(ctx.ip);
    if (address.waitSeconds > 0) return tooMany(ctx, address, 'address');
    await next();
    // The provider found the code live and unused (it took it as the request's DeviceCode), or
    // refused the form before any lookup (expired, the database busy): no guess. A wrong, expired
    // or used code stays counted, and only then is everyone's budget charged.
    if ((ctx as unknown as KoaContextWithOIDC).oidc?.entities?.DeviceCode || !codeMissed(ctx)) return limits.giveBackGuess(ctx.ip);
    const everyone = await limits.countMiss();
    if (everyone.waitSeconds > 0) tooMany(ctx, everyone, 'everyone');
  });
  return router;
}

/**
 * slow_down (RFC 8628 section 3.5): a device that polls a pending code sooner than the interval
 * allows is told to back off, in place of authorization_pending. A poll that finds the code
 * approved, refused or expired always gets that answer. Runs inside the provider, after its token
 * endpoint answered.
 */
export function devicePolling(limits: DeviceCodeLimits) {
  return async (ctx: KoaContextWithOIDC, next: Next) => {
    await next();
    const body = ctx.body as { error?: string } | undefined;
    if (ctx.oidc?.route !== 'token' || ctx.oidc.params?.grant_type !== DEVICE_CODE_GRANT || body?.error !== 'authorization_pending') return;
    if (await limits.pollInTime(String(ctx.oidc.params.device_code))) return;
    ctx.body = { error: 'slow_down', error_description: 'you are polling too quickly and should back off at a reasonable rate' };
  };
}
