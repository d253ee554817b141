/**
 * A department (organisational unit) is a code from the feeding system, its levels from the
 * faculty down separated by "/": "eng", "eng/mech". Codes rather than names, because access rules
 * and help-desk lists compare them, and a name changes with a reorganisation or a translation.
 * Letter case and full-width input do not matter: codes are kept in lower case ASCII.
 */
const LEVEL = /^[a-z0-9][a-z0-9._-]*$/;
export const DEPARTMENT_MAX_LENGTH = 128;

/** The code as it is kept, or undefined when the text is not one. */
export function normalizeDepartment(raw: string): string | undefined {
  const code = raw.normalize('NFKC').trim().toLowerCase();
  if (!code || code.length > DEPARTMENT_MAX_LENGTH) return undefined;
  return code.split('/').every((level) => LEVEL.test(level)) ? code : undefined;
}

/** Whether the department is one of `units` or below one of them ("eng" takes in "eng/mech"). */
export function inDepartments(department: string | null, units: readonly string[]): boolean {
  return department !== null && units.some((unit) => department === unit || department.startsWith(`${unit}/`));
}
