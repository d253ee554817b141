import { randomUUID } from 'node:crypto';
import type { SecretBox } from '../crypto/secret-box.ts';
import { DomainError } from '../shared/errors.ts';
import type { FactorChange } from './mfa.service.ts';
import type { TokenRow, TokenStore } from './token.store.ts';
import { isBase32Secret, totpUsable } from './totp.ts';
import { NO_METER, type Meter } from '../metrics/meter.ts';

export interface TokenInput {
  serial: unknown;
  secret: unknown;
  digits: unknown;
  period: unknown;
}

export interface TokenView {
  serial: string;
  digits: number;
  period: number;
  assignedTo: string | null;
  assignedAt: string | null;
}

const SERIAL = /^[A-Za-z0-9._-]{1,64}$/;

function toView(row: TokenRow): TokenView {
  return {
    serial: row.serial,
    digits: row.digits,
    period: row.period,
    assignedTo: row.common_id,
    assignedAt: row.assigned_at ? new Date(row.assigned_at).toISOString() : null,
  };
}

/** Lent hardware tokens. Their secrets are encrypted at rest and never leave the server. */
export class TokenService {
  readonly #store: TokenStore;
  readonly #box: SecretBox;
  readonly #meter: Meter;
  readonly #onChange: (change: FactorChange) => void;

  /** `onChange` hears of a token lent or taken back: for the person, a sign-in method added or removed. */
  constructor(deps: { store: TokenStore; box: SecretBox; meter?: Meter; onChange?: (change: FactorChange) => void }) {
    this.#store = deps.store;
    this.#box = deps.box;
    this.#meter = deps.meter ?? NO_METER;
    this.#onChange = deps.onChange ?? (() => undefined);
  }

  async add(input: TokenInput): Promise<TokenView> {
    // Each field of its own JSON type: a list or an object is no serial, "6" no number of digits.
    const serial = typeof input.serial === 'string' ? input.serial.trim() : '';
    if (!SERIAL.test(serial)) throw new DomainError('invalid_serial', 'the serial must be text of 1 to 64 letters, digits, dots, hyphens or underscores');
    const secret = typeof input.secret === 'string' ? input.secret.replace(/\s/g, '').toUpperCase() : '';
    if (!isBase32Secret(secret) || !(await totpUsable(secret))) {
      throw new DomainError('invalid_secret', 'the secret must be base32 (A-Z, 2-7) of at least 128 bits (26 characters or more)');
    }
    const digits = input.digits;
    if (digits !== 6 && digits !== 8) throw new DomainError('invalid_digits', 'digits must be the number 6 or 8');
    const period = input.period;
    if (period !== 30 && period !== 60) throw new DomainError('invalid_period', 'period must be the number 30 or 60 (seconds)');
    if (!(await this.#store.insert({ serial, secretEnc: this.#box.encrypt(secret.replace(/=+$/, '')), digits, period }))) {
      throw new DomainError('token_exists', `a token with serial ${serial} is already loaded`);
    }
    return { serial, digits, period, assignedTo: null, assignedAt: null };
  }

  async list(): Promise<TokenView[]> {
    return (await this.#store.list()).map(toView);
  }

  /** The id of the account a token is lent to (null in stock, undefined when there is no such token). */
  lentTo(serial: string): Promise<string | null | undefined> {
    return this.#store.lentTo(serial);
  }

  async assign(serial: string, accountId: string): Promise<void> {
    if (!(await this.#store.assign(serial, accountId))) {
      throw new DomainError('token_unavailable', `token ${serial} is not loaded or is already lent`);
    }
    this.#meter.factorAdded('token');
    // A token can be lent to the same person again later: each lending is an event of its own.
    this.#onChange({ accountId, change: 'added', method: 'token', eventId: `token/${serial}/${randomUUID()}` });
  }

  /** Takes a token back; returns the account that had it (null if it was free). */
  async unassign(serial: string): Promise<string | null> {
    const previous = await this.#store.unassign(serial);
    if (previous === undefined) throw new DomainError('token_not_found', `no token with serial ${serial}`);
    if (previous) this.#onChange({ accountId: previous, change: 'removed', method: 'token', eventId: `token/${serial}/${randomUUID()}` });
    return previous;
  }
}
