import type { CodeSender, SendOutcome } from '../mfa/code-sender.ts';
import type { CodeCheck } from '../mfa/otp-code.store.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { AccountStore } from './account.store.ts';
import { mailedCodeKey, type LoginThrottle, type ThrottleState } from '../throttle/login-throttle.ts';
import { SECOND_FACTOR_THROTTLE } from '../config/defaults.ts';

/** A mailed code's check: its outcome, or refused unchecked while the account's wrong codes lock it. */
export type MailedCodeCheck = CodeCheck | { locked: ThrottleState };

// The local part in printable ASCII (RFC 5322 atext and dots), after NFKC has folded full-width
// input: an address Akamon mails without SMTPUTF8 and keeps in a cookie while it is confirmed.
const EMAIL = /^[\w!#$%&'*+\-./=?^`{|}~]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)+$/i;

/** "h****@e****.com": enough for the person to recognise, too little to reveal the address. */
export function maskEmail(email: string): string {
  const [local, domain] = email.split('@');
  const dot = domain.lastIndexOf('.');
  return `${local[0]}****@${domain[0]}****${dot > 0 ? domain.slice(dot) : ''}`;
}

export function normalizeEmail(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  const email = input.normalize('NFKC').trim();
  return email.length <= 254 && EMAIL.test(email) ? email : undefined;
}

/**
 * The recovery address: confirmed by a 6-digit code mailed to it before it is kept. It serves
 * recovery only and is never accepted as a sign-in factor.
 */
export class RecoveryEmail {
  readonly #accounts: AccountStore;
  readonly #sender: CodeSender;
  readonly #mailer: Mailer;
  readonly #throttle: LoginThrottle;

  constructor(deps: { accounts: AccountStore; sender: CodeSender; mailer: Mailer; throttle: LoginThrottle }) {
    this.#accounts = deps.accounts;
    this.#sender = deps.sender;
    this.#mailer = deps.mailer;
    this.#throttle = deps.throttle;
  }

  get available(): boolean {
    return this.#mailer.available;
  }

  sendCode(accountId: string, purpose: string, email: string, message: (code: string) => { subject: string; text: string }): Promise<SendOutcome> {
    return this.#sender.send('email', accountId, purpose, email.toLowerCase(), (code) => this.#mailer.send({ to: email, ...message(code) }));
  }

  /** Uses up a code sent for `purpose` (a password reset), without changing the address. */
  checkCode(accountId: string, purpose: string, code: string): Promise<MailedCodeCheck> {
    return this.#guess(accountId, () => this.#sender.check(accountId, purpose, code));
  }

  /** A notice to the recovery address (a password was reset, say); failures are the caller's to log. */
  notify(email: string, subject: string, text: string): Promise<void> {
    return this.#mailer.send({ to: email, subject, text });
  }

  /**
   * Tells the previous recovery address that another replaced it: a changed recovery address is how
   * accounts are taken over. Nothing to send when there was none or it is the same.
   */
  async replaced(previous: string | null, email: string, message: { subject: string; text: string }): Promise<void> {
    if (previous && previous.toLowerCase() !== email.toLowerCase()) await this.notify(previous, message.subject, message.text);
  }

  async confirm(accountId: string, purpose: string, email: string, code: string): Promise<MailedCodeCheck> {
    const result = await this.#guess(accountId, () => this.#sender.check(accountId, purpose, code));
    if (result === 'ok') await this.#accounts.setRecoveryEmail(accountId, email);
    return result;
  }

  /**
   * Each code dies after 5 wrong tries, but a new one can be sent: the account's wrong codes are
   * counted across them, under a second factor's limits (a reset's code stands in for one).
   */
  async #guess(accountId: string, check: () => Promise<CodeCheck>): Promise<MailedCodeCheck> {
    const guessed = await this.#throttle.guess([{ key: mailedCodeKey(accountId), rule: SECOND_FACTOR_THROTTLE }], check, (result) => result === 'ok');
    return 'locked' in guessed ? guessed : guessed.outcome;
  }
}
