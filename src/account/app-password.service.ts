import { randomInt } from 'node:crypto';
import { hmac } from '../crypto/tokens.ts';
import { DomainError } from '../shared/errors.ts';
import type { AppPasswordRow, AppPasswordStore } from './app-password.store.ts';

export const MAX_APP_PASSWORDS = 10;
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
    const label = String(name ?? '').normalize('NFC').trim();
    if (!label || label.length > 64 || /[\u0000-\u001f\u007f]/.test(label)) throw new DomainError('invalid_name', 'an app password needs a name of 1 to 64 characters');
    const letters = Array.from({ length: 20 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    const secret = letters.match(/.{4}/g)!.join(' ');
    const appPassword = await this.#store.insert(accountId, label, this.#digest(secret), MAX_APP_PASSWORDS);
    if (!appPassword) throw new DomainError('too_many_app_passwords', `an account can have at most ${MAX_APP_PASSWORDS} app passwords; revoke one first`);
    return { appPassword, secret };
  }

  list(accountId: string): Promise<AppPasswordRow[]> {
    return this.#store.list(accountId);
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
