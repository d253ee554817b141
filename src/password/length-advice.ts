import type { ClientStore } from '../client/client.store.ts';
import type { Translate } from '../i18n/i18n.ts';

/**
 * The advisory about systems that accept only shorter passwords (32 characters at the reference
 * university): the notice to show, and a warning when a chosen password is longer.
 */
export async function lengthAdvice(clients: ClientStore, t: Translate, length?: number): Promise<{ longNotice: string | null; longWarning: string | null }> {
  const limits = await clients.passwordLengthLimits();
  if (limits.length === 0) return { longNotice: null, longWarning: null };
  const max = limits[0].max_password_length;
  const systems = limits.filter((l) => l.max_password_length === max).map((l) => l.name).join(', ');
  return {
    longNotice: t('password_change.long_notice', { max, systems }),
    longWarning: length !== undefined && length > max ? t('password_change.long_warning', { max, systems, length }) : null,
  };
}
