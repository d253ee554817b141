import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { translator } from '../i18n/i18n.ts';
import type { Renderer } from '../http/renderer.ts';
import type { DeviceCodeLimits } from '../throttle/device-codes.ts';
import { DEVICE_CODE_GRANT } from '../client/client-settings.ts';

/**
 * The guessing limit of user codes (RFC 8628 section 5.1), in front of the provider's verification
 * endpoint: a code entered past the budget of its address or of everyone is not looked up, and the
 * person gets a ja/en page with 429 and Retry-After. A route of Akamon's own, so the page rules
 * (a refused input is a page, not JSON) hold for it; it hands every other request to the provider.
 */
export function deviceVerificationRoutes(limits: DeviceCodeLimits, renderer: Renderer): Router {
  const router = new Router();
  // The router matches as the provider's does (any letter case, a trailing slash), so no spelling of the path passes by.
  router.post('/device', async (ctx: Context, next: Next) => {
    const userCode = (ctx.request.body as Record<string, unknown> | undefined)?.user_code;
    if (typeof userCode !== 'string' || userCode.trim() === '') return next();
    const limit = await limits.takeGuess(ctx.ip);
    if (limit.waitSeconds > 0) {
      ctx.state.log.warn({ event: 'device.user_code_limited', waitSeconds: limit.waitSeconds }, 'device user code refused: too many wrong codes');
      ctx.set('Retry-After', String(limit.waitSeconds));
      const t = translator(ctx.state.locale);
      return renderer.page(ctx, 'error', 'error.title', { message: t('device.too_many_codes', { minutes: Math.max(1, Math.ceil(limit.waitSeconds / 60)) }) }, 429);
    }
    await next();
    // The provider found the code (it took it as the request's DeviceCode): no guess. A wrong,
    // expired or used one stays counted.
    if ((ctx as unknown as KoaContextWithOIDC).oidc?.entities?.DeviceCode) await limits.giveBackGuess(ctx.ip);
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
