import { maskEmail } from '../account/recovery-email.ts';
import type { AccountEmails } from '../account/reset-address.ts';
import type { Translate } from '../i18n/i18n.ts';

/** A labelled line of the email model on a page; `link` is what to do next when a reset is not possible. */
export interface EmailRow {
  label: string;
  value: string;
  hint?: string;
  link?: { href: string; text: string };
}

/** Where a person adds a recovery email: the email section of the security page. */
export const ADD_RECOVERY_EMAIL_URL = '/account/security#email';

/**
 * The account home's and the security page's lines for the two addresses, each labelled, and
 * whether a reset by email is possible; the address a reset goes to is masked as /recover shows it.
 */
export function emailRows(t: Translate, emails: AccountEmails, options: { addLink: boolean }): EmailRow[] {
  const { reset } = emails;
  const resetLine: EmailRow = reset.possible
    ? { label: t('emails.reset'), value: t(reset.via === 'recovery_email' ? 'emails.reset_to_recovery' : 'emails.reset_to_university', { masked: maskEmail(reset.to) }) }
    : {
        label: t('emails.reset'),
        value: t(reset.reason === 'no_email' ? 'emails.reset_no_email' : 'emails.reset_not_accepted'),
        ...(options.addLink ? { link: { href: ADD_RECOVERY_EMAIL_URL, text: t('emails.add_recovery') } } : {}),
      };
  return [
    { label: t('emails.university'), value: emails.university ?? t('account.none'), hint: t('emails.university_hint') },
    { label: t('emails.recovery'), value: emails.recovery ?? t('account.none') },
    resetLine,
  ];
}
