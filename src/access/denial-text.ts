import type { MessageKey } from '../i18n/en.ts';
import type { DenialReason } from './access-rules.ts';

/** The words for each access-rule denial: on the 53003 page and in the service directory alike. */
export const DENIAL_REASON_TEXT: Record<DenialReason, MessageKey> = {
  account_denied: 'denied.reason.account_denied',
  status_not_allowed: 'denied.reason.status_not_allowed',
  affiliation_not_allowed: 'denied.reason.affiliation_not_allowed',
  department_not_allowed: 'denied.reason.department_not_allowed',
  education_required: 'denied.reason.education_required',
  salvage_over: 'denied.reason.salvage_over',
  mfa_required: 'denied.reason.mfa_required',
};

export const DENIAL_TODO_TEXT: Record<DenialReason, MessageKey> = {
  account_denied: 'denied.todo.office',
  status_not_allowed: 'denied.todo.office',
  affiliation_not_allowed: 'denied.todo.office',
  department_not_allowed: 'denied.todo.office',
  education_required: 'denied.todo.education',
  salvage_over: 'denied.todo.office',
  mfa_required: 'denied.todo.mfa',
};

/**
 * The relying party's error_description for a denial (protocol text, so English): it names the
 * refusal and the rule, never reading like a person's cancel.
 */
export function denialDescription(reason: DenialReason): string {
  return `the account is not allowed to use this system (${reason})`;
}
