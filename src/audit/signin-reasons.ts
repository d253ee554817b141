import type { DenialReason } from '../access/access-rules.ts';
import { DENIAL_REASON_TEXT } from '../access/denial-text.ts';
import type { MessageKey } from '../i18n/en.ts';

/**
 * Every reason code the sign-in log records, in one place: the recorders are typed by it, the
 * metrics label by it (an unknown code cannot grow a series), and the console and the dashboard
 * show its words. A new code is added here, with its words, or the build fails.
 */
const REASON_TEXT = {
  // Signed in: with what.
  password: 'signin_reason.password',
  app_password: 'signin_reason.app_password',
  password_grant_password: 'signin_reason.password_grant_password',
  password_grant_app_password: 'signin_reason.password_grant_app_password',
  salvage: 'signin_reason.salvage',
  // Refused.
  wrong_password: 'signin_reason.wrong_password',
  unknown_account: 'signin_reason.unknown_account',
  locked: 'signin_reason.locked',
  blocked: 'signin_reason.blocked',
  overloaded: 'signin_reason.overloaded',
  account_suspended: 'signin_reason.account_suspended',
  account_revoked: 'signin_reason.account_revoked',
  salvage_refused: 'signin_reason.salvage_refused',
  password_change_required: 'signin_reason.password_change_required',
} as const satisfies Record<string, MessageKey>;

/** A refusal by a system's access rule: `access_denied.<rule>`. */
export type AccessDeniedReason = `access_denied.${DenialReason}`;
export type SigninReason = keyof typeof REASON_TEXT | AccessDeniedReason;

export const ACCESS_DENIED_PREFIX = 'access_denied.';

export const accessDenied = (rule: DenialReason): AccessDeniedReason => `${ACCESS_DENIED_PREFIX}${rule}` as AccessDeniedReason;

export const SIGNIN_REASONS: readonly SigninReason[] = [...(Object.keys(REASON_TEXT) as SigninReason[]), ...(Object.keys(DENIAL_REASON_TEXT) as DenialReason[]).map(accessDenied)];

const KNOWN: ReadonlySet<string> = new Set(SIGNIN_REASONS);

export function isSigninReason(value: unknown): value is SigninReason {
  return typeof value === 'string' && KNOWN.has(value);
}

/**
 * The words for a reason code as operators read it (the console's sign-in list, the dashboard);
 * a code from an older version that is no longer known shows as itself.
 */
export function signinReasonText(reason: string): { key: MessageKey; rule?: DenialReason } | undefined {
  if (Object.hasOwn(REASON_TEXT, reason)) return { key: REASON_TEXT[reason as keyof typeof REASON_TEXT] };
  if (isSigninReason(reason)) return { key: 'signin_reason.access_denied', rule: reason.slice(ACCESS_DENIED_PREFIX.length) as DenialReason };
  return undefined;
}
