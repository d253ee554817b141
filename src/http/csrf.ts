import { type KeyObject, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { hmac, safeEqual } from '../crypto/tokens.ts';
import { siteCookieName, siteCookieOptions } from './site-cookie.ts';

/**
 * CSRF protection for Akamon's own forms: a random per-browser cookie, and in each form an HMAC of
 * it that another site can neither read nor compute.
 */
export class CsrfGuard {
  readonly #key: KeyObject;
  readonly #cookieName: string;
  readonly #secure: boolean;

  /** `name` keeps another server on the same host (cookies ignore ports) from overwriting ours. */
  constructor(key: KeyObject, production: boolean, name = 'akamon_csrf') {
    this.#key = key;
    this.#cookieName = siteCookieName(name, production);
    this.#secure = production;
  }

  token(ctx: Context): string {
    let secret = (ctx.state.csrfSecret as string | undefined) ?? ctx.cookies.get(this.#cookieName);
    if (!secret || !/^[A-Za-z0-9_-]{43}$/.test(secret)) {
      secret = randomBytes(32).toString('base64url');
      ctx.cookies.set(this.#cookieName, secret, siteCookieOptions(this.#secure, { signed: false }));
    }
    ctx.state.csrfSecret = secret;
    return hmac(this.#key, secret);
  }

  valid(ctx: Context, submitted: unknown): boolean {
    const secret = ctx.cookies.get(this.#cookieName);
    if (!secret || typeof submitted !== 'string') return false;
    return safeEqual(hmac(this.#key, secret), submitted);
  }
}
