import type { Context } from 'koa';
import type { MessageKey } from '../i18n/en.ts';
import { type DomainError, RetryLaterError } from '../shared/errors.ts';

export interface ErrorAnswer {
  readonly status: number;
  /** What a page says (the admin API says the error's own text to the operator). */
  readonly message: MessageKey;
  /** The page's heading, where it is not the generic "Something went wrong". */
  readonly title?: MessageKey;
}

const invalid = (message: MessageKey = 'error.bad_request'): ErrorAnswer => ({ status: 400, message });
const notFound: ErrorAnswer = { status: 404, message: 'error.not_found' };
const conflict: ErrorAnswer = { status: 409, message: 'error.conflict' };

/**
 * Every domain error code, declared once with its HTTP status and its page message. Pages, the
 * protocol front end and the admin API all answer from here; a code missing from this table is a
 * programming error and answers 500 (the test over the sources keeps the table complete).
 */
export const ERROR_ANSWERS: Readonly<Record<string, ErrorAnswer>> = {
  database_unavailable: { status: 503, message: 'unavailable.body', title: 'unavailable.title' },
  overloaded: { status: 503, message: 'busy.body', title: 'busy.title' },
  // The ceiling of records stored for callers not signed in, reached by all sources together (throttle/anonymous-cap.ts).
  anonymous_ceiling: { status: 503, message: 'busy.body', title: 'busy.title' },
  locked: { status: 429, message: 'error.locked' },
  rate_limited: { status: 429, message: 'rate_limited.body', title: 'rate_limited.title' },

  account_not_found: notFound,
  client_not_found: notFound,
  token_not_found: notFound,
  rule_not_found: notFound,
  role_not_found: notFound,
  link_not_found: notFound,
  app_password_not_found: notFound,
  // The admin API's answer to a path or method it does not serve (its pages answer 404 and 405 themselves).
  no_such_endpoint: notFound,
  method_not_allowed: { status: 405, message: 'error.bad_request' },
  // A JSON API sent a body of another type (src/http/input-guard.ts, sendsOtherThanJson).
  unsupported_media_type: { status: 415, message: 'error.bad_request' },

  account_exists: conflict,
  client_exists: conflict,
  resource_server_taken: conflict,
  token_exists: conflict,
  token_unavailable: conflict,
  already_revoked: conflict,
  not_scheduled: conflict,
  protected_client: { status: 403, message: 'error.generic' },
  // An operator's role does not grant the action (src/operator/permissions.ts).
  forbidden: { status: 403, message: 'error.forbidden' },
  out_of_scope: { status: 403, message: 'error.out_of_scope' },
  last_method: { status: 409, message: 'security.remove_last_refused' },

  too_many_app_passwords: invalid('account.app_password_limit'),
  invalid_app_password_name: invalid('account.app_password_name'),
  invalid_name: invalid(),
  invalid_email: invalid(),
  invalid_request: invalid(),
  invalid_uri: invalid(),
  invalid_date: invalid(),
  invalid_period: invalid(),
  invalid_year: invalid(),
  date_outside_year: invalid(),
  invalid_client_metadata: invalid(),
  invalid_saml_metadata: invalid(),
  saml_refused: invalid('saml.refused'),
  saml_malformed: invalid('saml.malformed'),
  saml_replayed: invalid('saml.replayed'),
  saml_expired: invalid('saml.expired'),
  invalid_common_id: invalid(),
  invalid_affiliation: invalid(),
  // A CSV file refused as a whole (src/shared/csv-table.ts); the console shows each with its own text.
  csv_too_large: { status: 413, message: 'error.bad_request' },
  csv_not_utf8: invalid(),
  csv_invalid: invalid(),
  csv_empty: invalid(),
  csv_unknown_column: invalid(),
  csv_missing_column: invalid(),
  csv_duplicate_column: invalid(),
  csv_too_many_rows: invalid(),
  csv_no_rows: invalid(),
  invalid_reading: invalid(),
  invalid_department: invalid(),
  invalid_entitlement: invalid(),
  invalid_status: invalid(),
  invalid_description: invalid(),
  invalid_digits: invalid(),
  invalid_secret: invalid(),
  invalid_serial: invalid(),
  invalid_mfa_max_age: invalid(),
  invalid_max_password_length: invalid(),
  password_policy: invalid('password_change.broken_rules'),
  password_mismatch: invalid('password_change.mismatch'),
  wrong_current_password: invalid('password_change.wrong_current'),
};

const UNDECLARED: ErrorAnswer = { status: 500, message: 'error.generic' };

export function errorAnswer(error: DomainError): ErrorAnswer {
  return ERROR_ANSWERS[error.code] ?? UNDECLARED;
}

/** `error`'s answer, with Retry-After set when the caller is to come back: every surface answers it so. */
export function answerTo(ctx: Context, error: DomainError): ErrorAnswer {
  if (error instanceof RetryLaterError) setRetryAfter(ctx, error);
  return errorAnswer(error);
}

/** A 503 (or whatever is declared) that tells the caller when to come back. */
export function setRetryAfter(ctx: Context, error: RetryLaterError): void {
  ctx.set('Retry-After', String(error.retryAfterSeconds));
}

/** The body a protocol endpoint (RFC 6749 section 5.2 style) answers for a retry-later error. */
export const TEMPORARILY_UNAVAILABLE = { error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable; try again in a moment' } as const;
