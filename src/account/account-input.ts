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
  /** The feeding system's identifier of the person (SCIM externalId); none when left out. */
  externalId?: string | null;
  /** The fields of account-fields.ts, by their admin API names (familyName, department, ...). */
  profile?: Readonly<Record<string, unknown>>;
}

export interface ValidAccount {
  commonId: string;
  name: string;
  affiliation: Affiliation;
  email: string | null;
  externalId: string | null;
  profile: Partial<ProfileValues>;
}

/** One thing wrong with an account's data: its code, the text, and the column (CSV and database name) it is about. */
export interface Problem {
  code: string;
  message: string;
  field?: string;
}

const EMAIL_PATTERN = /^[^\s@"<>()\\,;:]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)+$/i;
const EXTERNAL_ID_MAX = 255;

/**
 * The core fields one by one (a create checks them all, a change only those it names): the cleaned
 * value, or the problem. The same rules on every path that sets them.
 */
export const CORE_FIELDS = {
  name(value: unknown): string | Problem {
    return (
      cleanName(String(value ?? ''), 200) ?? {
        code: 'invalid_name',
        message: 'the name must be 1 to 200 characters on one line, without control or bidirectional formatting characters',
        field: 'name',
      }
    );
  },
  affiliation(value: unknown): Affiliation | Problem {
    const affiliation = String(value ?? '')
      .trim()
      .toLowerCase() as Affiliation;
    return AFFILIATIONS.includes(affiliation) ? affiliation : { code: 'invalid_affiliation', message: `the affiliation must be one of ${AFFILIATIONS.join(', ')}`, field: 'affiliation' };
  },
  email(value: unknown): string | null | Problem {
    const email = value ? String(value).trim() : null;
    return email !== null && (email.length > 254 || !EMAIL_PATTERN.test(email)) ? { code: 'invalid_email', message: 'the email address is not valid', field: 'email' } : email;
  },
  externalId(value: unknown): string | null | Problem {
    if (value === undefined || value === null) return null;
    const id = typeof value === 'string' ? value.trim() : '';
    return id && id.length <= EXTERNAL_ID_MAX ? id : { code: 'invalid_request', message: `the external identifier must be a text of 1 to ${EXTERNAL_ID_MAX} characters`, field: 'external_id' };
  },
} as const;

export const isProblem = (value: unknown): value is Problem => typeof value === 'object' && value !== null && 'code' in value;
export type CoreField = keyof typeof CORE_FIELDS;

/** The core fields a change names, cleaned; refused with the first problem's code and text, as a create is. */
export function validateCoreChanges(changes: Partial<Record<CoreField, unknown>>): Partial<Record<CoreField, unknown>> {
  const problems: Problem[] = [];
  const values: Partial<Record<CoreField, unknown>> = {};
  for (const key of Object.keys(CORE_FIELDS) as CoreField[]) {
    if (changes[key] === undefined) continue;
    const value = CORE_FIELDS[key](changes[key]);
    if (isProblem(value)) problems.push(value);
    else values[key] = value;
  }
  if (problems.length) throw new DomainError(problems[0]!.code, problems[0]!.message, { problems });
  return values;
}

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
  const name = CORE_FIELDS.name(input.name);
  const affiliation = CORE_FIELDS.affiliation(input.affiliation);
  const email = CORE_FIELDS.email(input.email);
  const externalId = CORE_FIELDS.externalId(input.externalId);
  for (const value of [name, affiliation, email, externalId]) if (isProblem(value)) problems.push(value);
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
  return problems.length
    ? { problems }
    : { value: { commonId, name: name as string, affiliation: affiliation as Affiliation, email: email as string | null, externalId: externalId as string | null, profile }, problems };
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
