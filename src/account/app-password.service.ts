import { randomInt } from 'node:crypto';
import { hmac } from '../crypto/tokens.ts';
import { DomainError } from '../shared/errors.ts';
import { cleanName } from '../shared/text.ts';
import type { AppPasswordRow, AppPasswordStore } from './app-password.store.ts';
import { APP_PASSWORDS_MAX } from '../config/defaults.ts';

export const MAX_APP_PASSWORDS = APP_PASSWORDS_MAX;
const ALPHABET = 'abcdefghijkmnopqrstuvwxyz';

/**
 * App passwords: random, shown once, stored as an HMAC digest under a key derived from
 * AKAMON_SECRET (a database leak alone does not reveal them or allow offline guessing).
 */
export class AppPasswordService {
  readonly #store: AppPasswordStore;
  readonly #key: Buffer;

  constructor(deps: { store: AppPasswordStore; key: Buffer }) {
    this.#store = deps.store;
    this.#key = deps.key;
  }

  /** 20 lower-case letters in groups of four (about 93 bits); spaces are ignored when used. */
  async create(accountId: string, name: string): Promise<{ appPassword: AppPasswordRow; secret: string }> {
    const label = cleanName(String(name ?? ''), 64);
    if (!label) throw new DomainError('invalid_app_password_name', 'an app password needs a name of 1 to 64 characters on one line, without control or bidirectional formatting characters');
    const letters = Array.from({ length: 20 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    const secret = letters.match(/.{4}/g)!.join(' ');
    const appPassword = await this.#store.insert(accountId, label, this.#digest(secret), MAX_APP_PASSWORDS);
    if (!appPassword) throw new DomainError('too_many_app_passwords', `an account can have at most ${MAX_APP_PASSWORDS} app passwords; revoke one first`);
    return { appPassword, secret };
  }

  list(accountId: string): Promise<AppPasswordRow[]> {
    return this.#store.list(accountId);
  }

  /** Every app password of the account ends (a recovery: whoever had the account may have made one). */
  revokeAll(accountId: string): Promise<number> {
    return this.#store.deleteAll(accountId);
  }

  async revoke(accountId: string, id: string): Promise<void> {
    if (!(await this.#store.delete(accountId, id))) throw new DomainError('app_password_not_found', 'no such app password');
  }

  /** Whether `candidate` is one of the account's app passwords (and marks it used). */
  matches(accountId: string, candidate: string): Promise<boolean> {
    const normalized = candidate.replace(/\s/g, '').toLowerCase();
    if (!/^[a-z]{20}$/.test(normalized)) return Promise.resolve(false);
    return this.#store.use(accountId, this.#digest(normalized.match(/.{4}/g)!.join(' ')));
  }

  #digest(secret: string): string {
    return hmac(this.#key, secret);
  }
}
