import type { Affiliation } from '../db/schema.ts';
import { DomainError } from '../shared/errors.ts';
import { cleanName } from '../shared/text.ts';
import { ACCOUNT_FIELDS, type ProfileValues, readProfile } from './account-fields.ts';
import { COMMON_ID_PATTERN } from './common-id.ts';

export const AFFILIATIONS: readonly Affiliation[] = ['student', 'faculty', 'staff', 'alumni', 'guest'];

export interface AccountInput {
  commonId: string;
  name: string;
  affiliation: string;
  email?: string | null;
  /** The fields of account-fields.ts, by their admin API names (familyName, department, ...). */
  profile?: Readonly<Record<string, unknown>>;
}

export interface ValidAccount {
  commonId: string;
  name: string;
  affiliation: Affiliation;
  email: string | null;
  profile: Partial<ProfileValues>;
}

/** One thing wrong with an account's data: its code, the text, and the column (CSV and database name) it is about. */
export interface Problem {
  code: string;
  message: string;
  field?: string;
}

const EMAIL_PATTERN = /^[^\s@"<>()\\,;:]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)+$/i;

/** What went wrong, as a Problem; anything that is not a domain refusal is a bug and goes on. */
export function problemOf(error: unknown, field?: string): Problem {
  if (!(error instanceof DomainError)) throw error;
  return { code: error.code, message: error.message, ...(field ? { field } : {}) };
}

/**
 * Every problem of an account's data at once (an import reports them all, so a row is fixed in one
 * go), and the cleaned values when there is none.
 */
export function checkAccountInput(input: AccountInput): { value?: ValidAccount; problems: Problem[] } {
  const problems: Problem[] = [];
  const commonId = String(input.commonId ?? '').trim();
  if (!COMMON_ID_PATTERN.test(commonId)) problems.push({ code: 'invalid_common_id', message: 'the Common ID must be exactly 10 digits', field: 'common_id' });
  const name = cleanName(String(input.name ?? ''), 200);
  if (!name) problems.push({ code: 'invalid_name', message: 'the name must be 1 to 200 characters on one line, without control or bidirectional formatting characters', field: 'name' });
  const affiliation = String(input.affiliation ?? '')
    .trim()
    .toLowerCase() as Affiliation;
  if (!AFFILIATIONS.includes(affiliation)) problems.push({ code: 'invalid_affiliation', message: `the affiliation must be one of ${AFFILIATIONS.join(', ')}`, field: 'affiliation' });
  const email = input.email ? String(input.email).trim() : null;
  if (email !== null && (email.length > 254 || !EMAIL_PATTERN.test(email))) problems.push({ code: 'invalid_email', message: 'the email address is not valid', field: 'email' });
  // Each field on its own, so that a bad one does not hide the next.
  const given = input.profile ?? {};
  let profile: Partial<ProfileValues> = {};
  for (const field of ACCOUNT_FIELDS) {
    if (given[field.key] === undefined) continue;
    try {
      profile = { ...profile, ...readProfile({ [field.key]: given[field.key] }) };
    } catch (error) {
      problems.push(problemOf(error, field.column));
    }
  }
  return problems.length ? { problems } : { value: { commonId, name: name!, affiliation, email, profile }, problems };
}

/**
 * The checked account data of a single create: refused with the first problem's code and text (what
 * callers and scripts have always matched on), and every problem in details.problems, which the
 * admin API passes on in its answer.
 */
export function validateAccountInput(input: AccountInput): ValidAccount {
  const { value, problems } = checkAccountInput(input);
  if (!value) throw new DomainError(problems[0]!.code, problems[0]!.message, { problems });
  return value;
}
