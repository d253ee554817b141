import type { Config } from '../config/config.ts';
import type { MessageKey } from '../i18n/en.ts';
import { formatDate, LOCALES, translator, type Locale } from '../i18n/i18n.ts';
import type { ComposeNotice, NoticeContent } from './notices.ts';

/**
 * The text of a notice, Japanese and English in one mail. A mail that answers a request (a reset
 * code) is written in the page's language; a scheduled notice has no request, and Akamon keeps no
 * language per account, so it carries both, Japanese first, as the university's own notices do.
 * Kept apart from the domain (src/notice/notices.ts), which names no text and renders nothing.
 */
const SUBJECT: Record<NoticeContent['kind'], MessageKey> = {
  revocation: 'notice.revocation_subject',
  password_expiry: 'notice.password_expiry_subject',
  mfa_required: 'notice.mfa_required_subject',
  factor_added: 'notice.factor_added_subject',
  factor_removed: 'notice.factor_removed_subject',
};

const BODY: Record<NoticeContent['kind'], MessageKey> = {
  revocation: 'notice.revocation_body',
  password_expiry: 'notice.password_expiry_body',
  mfa_required: 'notice.mfa_required_body',
  factor_added: 'notice.factor_added_body',
  factor_removed: 'notice.factor_removed_body',
};

const METHOD: Record<string, MessageKey> = {
  totp: 'console.kind_totp',
  token: 'console.kind_token',
  webauthn: 'console.kind_webauthn',
  phone: 'console.kind_phone',
  all: 'notice.method_all',
};

export function noticeMail(config: Pick<Config, 'issuer' | 'issuerName' | 'timeZone' | 'salvageDays'>): ComposeNotice {
  return (content) => {
    const part = (locale: Locale) => {
      const t = translator(locale);
      const vars = {
        service: config.issuerName,
        name: content.name,
        commonId: content.commonId,
        date: content.details.at ? formatDate(locale, content.details.expiresAt ?? content.details.at, config.timeZone) : '',
        method: t(METHOD[content.details.method] ?? 'notice.method_all'),
        account: `${config.issuer}/account`,
        security: `${config.issuer}/account/security`,
        idv: `${config.issuer}/account/idv`,
        salvageDays: config.salvageDays,
      };
      return { subject: t(SUBJECT[content.kind], vars), text: `${t('notice.greeting', vars)}\n\n${t(BODY[content.kind], vars)}\n\n${t('notice.footer', vars)}` };
    };
    const [first, second] = LOCALES.map(part);
    return { subject: `${first.subject} / ${second.subject}`, text: `${first.text}\n\n----------------------------------------\n\n${second.text}\n` };
  };
}
