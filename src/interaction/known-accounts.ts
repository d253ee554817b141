import type { Context } from 'koa';
import { COMMON_ID_PATTERN } from '../account/common-id.ts';
import { KNOWN_ACCOUNTS_DAYS, KNOWN_ACCOUNTS_MAX } from '../config/defaults.ts';
import { siteCookieName, siteCookieOptions } from '../http/site-cookie.ts';

const MAX_ACCOUNTS = KNOWN_ACCOUNTS_MAX;
const MAX_AGE_SECONDS = KNOWN_ACCOUNTS_DAYS * 86400;

/**
 * The accounts used before in this browser, for the account picker: a signed cookie holding only
 * Common IDs (names are looked up when the picker is shown).
 */
export class KnownAccounts {
  readonly #name: string;
  readonly #secure: boolean;

  constructor(production: boolean) {
    this.#name = siteCookieName('akamon_accounts', production);
    this.#secure = production;
  }

  read(ctx: Context): string[] {
    const raw = ctx.cookies.get(this.#name, { signed: true }) ?? '';
    return raw
      .split('.')
      .filter((id) => COMMON_ID_PATTERN.test(id))
      .slice(0, MAX_ACCOUNTS);
  }

  remember(ctx: Context, commonId: string): void {
    const ids = [commonId, ...this.read(ctx).filter((id) => id !== commonId)].slice(0, MAX_ACCOUNTS);
    ctx.cookies.set(this.#name, ids.join('.'), siteCookieOptions(this.#secure, { maxAgeSeconds: MAX_AGE_SECONDS }));
  }
}
