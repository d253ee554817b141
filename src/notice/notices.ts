import { DeliveryError } from '../mfa/code-sender.ts';
import { afterUnitCommits } from '../db/driver.ts';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { NOTICE_MAX_ATTEMPTS, NOTICE_RETRY_BASE_SECONDS, NOTICE_RETRY_MAX_SECONDS, NOTICE_SEND_LEASE_SECONDS } from '../config/defaults.ts';
import type { Mailer } from '../mail/mailer.ts';
import { accountEmails } from '../account/reset-address.ts';
import { maskEmail } from '../account/recovery-email.ts';
import type { AccountRow } from '../account/account.store.ts';
import type { FactorChange } from '../mfa/mfa.service.ts';
import type { Clock } from '../shared/clock.ts';
import { datedOccasion, type Candidate, type NewNotice, type NoticeRow, type NoticeStore } from './notice.store.ts';

/**
 * Notices by mail: before a scheduled revocation, before a password expires, before the MFA date,
 * and when a sign-in method is added or removed.
 *
 * Every mail is first a row of the notice table, keyed by account, kind, occasion and address, and
 * inserted with ON CONFLICT DO NOTHING: however many nodes find an occasion, it is recorded once, and
 * a row is sent by the one node that claimed it. A failed send waits longer each time and is recorded
 * as failed after NOTICE_MAX_ATTEMPTS. Nothing here runs inside a request: the job finds and sends,
 * and a changed sign-in method only starts a send in the background.
 */
export type NoticeKind = 'revocation' | 'password_expiry' | 'mfa_required' | 'factor_added' | 'factor_removed';

/** Which of the account's addresses a row goes to; 'none' records an account with neither. */
export type Recipient = 'university' | 'recovery' | 'none';

/** What a mail's text is made from (src/notice/notice-mail.ts turns it into ja and en text). */
export interface NoticeContent {
  kind: NoticeKind;
  /** `at`: the date the occasion is about (ISO 8601); `method`: the kind of sign-in method changed. */
  details: Record<string, string>;
  name: string;
  commonId: string;
}

export type ComposeNotice = (content: NoticeContent) => { subject: string; text: string };

/**
 * Claimed and sent a few at a time, so that every claimed mail goes out well within its lease even
 * when each send waits for the mail server's time-outs.
 */
const SEND_CHUNK = 10;
const DAY_MS = 86_400_000;

export class Notices {
  readonly #store: NoticeStore;
  readonly #mailer: Mailer;
  readonly #compose: ComposeNotice;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #config: Pick<Config, 'notices' | 'passwordExpiry' | 'mfaRollout' | 'trustedEmailDomains'>;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(deps: {
    store: NoticeStore;
    mailer: Mailer;
    compose: ComposeNotice;
    clock: Clock;
    logger: Logger;
    config: Pick<Config, 'notices' | 'passwordExpiry' | 'mfaRollout' | 'trustedEmailDomains'>;
  }) {
    this.#store = deps.store;
    this.#mailer = deps.mailer;
    this.#compose = deps.compose;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#config = deps.config;
  }

  /**
   * A sweeper task: records the scheduled occasions that have come due, up to `batch` accounts per
   * occasion and lead time. Returns the largest count found, so the sweeper calls again while any is full.
   */
  async findDue(batch: number): Promise<number> {
    const now = this.#clock.now();
    const { revocation, passwordExpiry, mfaRequired } = this.#config.notices;
    let most = 0;
    // Each lead time has its own window, up to the next shorter one: a revocation scheduled 10 days
    // ahead gets the 14-day notice only, not a late 60-day one as well.
    const windows = (days: readonly number[]) => days.map((lead, i) => ({ lead, after: days[i + 1] ?? 0 }));
    if (revocation.enabled) {
      for (const { lead, after } of windows(revocation.days)) {
        const found = await this.#store.revocationsDue(now, lead, after, batch);
        await this.#record('revocation', found, (c) => ({ occasion: datedOccasion(c.at, lead), details: { at: c.at } }));
        most = Math.max(most, found.length);
      }
    }
    const maxAge = this.#config.passwordExpiry.maxAgeDays;
    if (passwordExpiry.enabled && maxAge > 0) {
      for (const { lead, after } of windows(passwordExpiry.days)) {
        const found = await this.#store.expiriesDue(now, maxAge, lead, after, batch);
        await this.#record('password_expiry', found, (c) => ({
          occasion: datedOccasion(c.at, lead),
          details: { at: c.at, expiresAt: new Date(new Date(c.at).getTime() + maxAge * DAY_MS).toISOString() },
        }));
        most = Math.max(most, found.length);
      }
    }
    const requiredFrom = this.#config.mfaRollout.requiredFrom;
    // Only the shortest lead time whose day has come: after the 7-day mail, the 30-day walk is over.
    const lead = requiredFrom && requiredFrom > now ? mfaRequired.days.findLast((days) => now.getTime() >= requiredFrom.getTime() - days * DAY_MS) : undefined;
    if (mfaRequired.enabled && requiredFrom && lead !== undefined) {
      const at = requiredFrom.toISOString();
      const occasion = datedOccasion(at, lead);
      const found = await this.#store.withoutMfaFor('mfa_required', occasion, batch);
      await this.#record('mfa_required', found, () => ({ occasion, details: { at } }));
      most = Math.max(most, found.length);
    }
    return most;
  }

  /**
   * A sweeper task: sends up to `batch` due mails (new ones and retries). A chunk in which the mail
   * server refused one ends the pass, and a server that cannot be reached ends it at once (#deliver):
   * the other tasks must not wait on it.
   */
  async deliverDue(batch: number): Promise<number> {
    let done = 0;
    while (done < batch) {
      const { claimed, failed } = await this.#deliver(Math.min(SEND_CHUNK, batch - done));
      done += claimed;
      if (claimed === 0 || failed) break;
    }
    return done;
  }

  /** MfaService's hook: records the change and sends its mails in the background, never in the request. */
  factorChanged(change: FactorChange): void {
    if (!this.#config.notices.factorChange.enabled) return;
    // Not of a change that was rolled back: made inside a unit of work (a change on the account home,
    // a recovery), the notice starts once it has committed, on connections of its own.
    void afterUnitCommits(async () => this.#noticeOf(change));
  }

  #noticeOf(change: FactorChange): void {
    const work = (async () => {
      const account = await this.#store.account(change.accountId);
      if (!account) return;
      const ids = await this.#record(change.change === 'added' ? 'factor_added' : 'factor_removed', [account], () => ({ occasion: change.eventId, details: { method: change.method } }));
      await this.#deliver(ids.length, ids);
    })()
      .catch((error: unknown) =>
        this.#logger.warn({ err: { message: (error as Error).message }, accountId: change.accountId }, 'sign-in method notice not recorded; the next job run retries what was recorded'),
      )
      .finally(() => this.#inFlight.delete(work));
    this.#inFlight.add(work);
  }

  /** Waits for the background sends started by factorChanged (shutdown, tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.#inFlight]);
  }

  /** The account's notices, oldest first (what was sent to whom and when; the tests read it). */
  forAccount(accountId: string): Promise<NoticeRow[]> {
    return this.#store.forAccount(accountId);
  }

  async #record(
    kind: NoticeKind,
    accounts: ReadonlyArray<Omit<Candidate, 'at'> & { at?: string }>,
    occasionOf: (c: Candidate) => { occasion: string; details: Record<string, string> },
  ): Promise<string[]> {
    const rows: NewNotice[] = accounts.flatMap((account) => {
      const { occasion, details } = occasionOf(account as Candidate);
      return this.#recipients(account).map((recipient) => ({ accountId: account.id, kind, occasion, recipient, details }));
    });
    return this.#store.insert(rows, this.#clock.now());
  }

  /** The university address and a confirmed recovery address, once each; 'none' when there is neither. */
  #recipients(account: Pick<AccountRow, 'email' | 'email_verified' | 'recovery_email' | 'recovery_email_verified_at'>): Recipient[] {
    const { university, recovery } = accountEmails(account, this.#config);
    const found: Recipient[] = [];
    if (university) found.push('university');
    if (recovery && recovery.toLowerCase() !== university?.toLowerCase()) found.push('recovery');
    return found.length ? found : ['none'];
  }

  async #deliver(limit: number, ids?: readonly string[]): Promise<{ claimed: number; failed: boolean }> {
    if (limit === 0) return { claimed: 0, failed: false };
    const now = this.#clock.now();
    const leaseUntil = new Date(now.getTime() + NOTICE_SEND_LEASE_SECONDS * 1000);
    const claimed = await this.#store.claim(now, leaseUntil, limit, ids);
    let failed = false;
    for (const [index, notice] of claimed.entries()) {
      const outcome = await this.#send(notice);
      failed ||= outcome !== 'done';
      if (outcome === 'server_down') {
        // The mail server could not be reached (or hangs, each try a timeout): the rest go back
        // untried, due at once, for the next pass. A refused recipient stops nothing.
        await this.#store.release(
          claimed.slice(index + 1).map((n) => n.id),
          leaseUntil,
          now,
        );
        break;
      }
    }
    return { claimed: claimed.length, failed };
  }

  /** Sends one claimed notice and records the outcome: 'failed' when the mail server refused it, 'server_down' when it could not be reached. */
  async #send(notice: NoticeRow): Promise<'done' | 'failed' | 'server_down'> {
    const kind = notice.kind as NoticeKind;
    const account = await this.#stillDue(notice, kind);
    const at = this.#clock.now();
    if (account === 'switched_off' || account === undefined) {
      await this.#store.finish(notice.id, { status: 'dropped', at, error: account ?? 'occasion_gone' });
      return 'done';
    }
    const { university, recovery } = accountEmails(account, this.#config);
    const to = notice.recipient === 'recovery' ? recovery : notice.recipient === 'university' ? university : null;
    if (!to) {
      await this.#store.finish(notice.id, { status: 'dropped', at, error: 'no_address' });
      return 'done';
    }
    const log = { notice: notice.id, kind, recipient: notice.recipient, to: maskEmail(to), attempt: notice.attempts };
    try {
      await this.#mailer.send({ to, ...this.#compose({ kind, details: notice.details, name: account.name, commonId: account.common_id }) });
    } catch (error) {
      const message = (error as Error).message.slice(0, 200);
      if (notice.attempts >= NOTICE_MAX_ATTEMPTS) {
        this.#logger.error(log, 'notice not sent: gave up');
        await this.#store.finish(notice.id, { status: 'failed', at, sentTo: maskEmail(to), error: message });
      } else {
        const wait = Math.min(NOTICE_RETRY_BASE_SECONDS * 2 ** (notice.attempts - 1), NOTICE_RETRY_MAX_SECONDS);
        this.#logger.warn({ ...log, retryInSeconds: wait }, 'notice not sent: will retry');
        await this.#store.finish(notice.id, { status: 'pending', at, error: message, retryAt: new Date(at.getTime() + wait * 1000) });
      }
      return error instanceof DeliveryError && error.serverDown ? 'server_down' : 'failed';
    }
    await this.#store.finish(notice.id, { status: 'sent', at, sentTo: maskEmail(to) });
    this.#logger.info(log, 'notice sent');
    return 'done';
  }

  /** The account now, if the occasion still holds: the revocation is still on that date, the password unchanged, MFA still missing. */
  async #stillDue(notice: NoticeRow, kind: NoticeKind): Promise<AccountRow | undefined | 'switched_off'> {
    const { notices, passwordExpiry, mfaRollout } = this.#config;
    switch (kind) {
      case 'revocation':
        return notices.revocation.enabled ? this.#store.accountFor(notice, { date: 'revoke_at' }) : 'switched_off';
      case 'password_expiry':
        return notices.passwordExpiry.enabled && passwordExpiry.maxAgeDays > 0 ? this.#store.accountFor(notice, { date: 'password_set_at', withoutMfa: true }) : 'switched_off';
      case 'mfa_required': {
        if (!notices.mfaRequired.enabled) return 'switched_off';
        const date = mfaRollout.requiredFrom;
        const moved = !date || date.toISOString() !== notice.details.at || date <= this.#clock.now();
        return moved ? undefined : this.#store.accountFor(notice, { active: true, withoutMfa: true });
      }
      case 'factor_added':
      case 'factor_removed':
        return notices.factorChange.enabled ? this.#store.accountFor(notice, {}) : 'switched_off';
      default:
        return undefined;
    }
  }
}
