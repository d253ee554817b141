import { type KeyObject, randomInt } from 'node:crypto';
import { hmac } from '../crypto/tokens.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/database.ts';
import { DomainError } from '../shared/errors.ts';
import { cleanName } from '../shared/text.ts';
import type { AppPasswordRow, AppPasswordStore } from './app-password.store.ts';
import { APP_PASSWORDS_MAX } from '../config/defaults.ts';

export const MAX_APP_PASSWORDS = APP_PASSWORDS_MAX;
const ALPHABET = 'abcdefghijkmnopqrstuvwxyz';
const REFUSALS = new Set(['too_many_app_passwords', 'invalid_app_password_name']);

/** A refusal of what the person asked for (a name, the cap), to say on their page; anything else is no answer of theirs. */
export function isAppPasswordRefusal(error: unknown): error is DomainError {
  return error instanceof DomainError && REFUSALS.has(error.code);
}

/**
 * App passwords: random, shown once, stored as an HMAC digest under a key derived from
 * AKAMON_SECRET (a database leak alone does not reveal them or allow offline guessing). A person
 * makes and revokes their own: each change lands with its audit record or not at all.
 */
export class AppPasswordService {
  readonly #store: AppPasswordStore;
  readonly #key: KeyObject;
  readonly #unitOfWork: Database['unitOfWork'];
  readonly #audit: AuditLog;

  constructor(deps: { store: AppPasswordStore; key: KeyObject; unitOfWork: Database['unitOfWork']; audit: AuditLog }) {
    this.#store = deps.store;
    this.#key = deps.key;
    this.#unitOfWork = deps.unitOfWork;
    this.#audit = deps.audit;
  }

  /** 20 lower-case letters in groups of four (about 93 bits); spaces are ignored when used. */
  async create(accountId: string, name: string): Promise<{ appPassword: AppPasswordRow; secret: string }> {
    const label = cleanName(String(name ?? ''), 64);
    if (!label) throw new DomainError('invalid_app_password_name', 'an app password needs a name of 1 to 64 characters on one line, without control or bidirectional formatting characters');
    const letters = Array.from({ length: 20 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    const secret = letters.match(/.{4}/g)!.join(' ');
    return this.#unitOfWork(async () => {
      const appPassword = await this.#store.insert(accountId, label, this.#digest(secret), MAX_APP_PASSWORDS);
      if (!appPassword) throw new DomainError('too_many_app_passwords', `an account can have at most ${MAX_APP_PASSWORDS} app passwords; revoke one first`);
      await this.#audit.record({ actor: 'self', action: 'app_password.created', accountId, details: { name: appPassword.name } });
      return { appPassword, secret };
    });
  }

  list(accountId: string): Promise<AppPasswordRow[]> {
    return this.#store.list(accountId);
  }

  /** Every app password of the account ends (a recovery: whoever had the account may have made one). */
  revokeAll(accountId: string): Promise<number> {
    return this.#store.deleteAll(accountId);
  }

  async revoke(accountId: string, id: string): Promise<void> {
    await this.#unitOfWork(async () => {
      if (!(await this.#store.delete(accountId, id))) throw new DomainError('app_password_not_found', 'no such app password');
      await this.#audit.record({ actor: 'self', action: 'app_password.revoked', accountId });
    });
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
