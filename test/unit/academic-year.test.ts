import { describe, expect, test } from '@jest/globals';
import { academicYear } from '../../src/education/academic-year.ts';
import { evaluateAccess } from '../../src/access/access-rules.ts';

describe('academic year (starts April 1, Tokyo time)', () => {
  const april = { month: 4, day: 1 };
  test.each([
    ['2027-03-31T14:59:59Z', 2026], // 23:59:59 on March 31 in Tokyo
    ['2027-03-31T15:00:00Z', 2027], // midnight of April 1 in Tokyo
    ['2026-12-31T23:00:00Z', 2026],
    ['2026-04-01T00:00:00Z', 2026],
  ])('%s is in %i', (instant, year) => expect(academicYear(new Date(instant), april, 'Asia/Tokyo')).toBe(year));

  test('another start day', () => {
    expect(academicYear(new Date('2026-09-30T12:00:00Z'), { month: 10, day: 1 }, 'UTC')).toBe(2025);
    expect(academicYear(new Date('2026-10-01T12:00:00Z'), { month: 10, day: 1 }, 'UTC')).toBe(2026);
  });
});

describe('access rules', () => {
  const open = { allowedAffiliations: null, allowedDepartments: null, allowedStatuses: ['active'] as const, requireEducation: false, requireMfa: false, salvage: false };
  const staff = {
    status: 'active' as const,
    affiliation: 'staff' as const,
    department: 'eng/mech',
    listed: null,
    educationPassed: false,
    salvageOpen: false,
    accountRequiresMfa: false,
    secondFactor: undefined,
  };
  test('deny wins over everything, allow only over affiliation', () => {
    expect(evaluateAccess(open, { ...staff, listed: 'deny' })).toEqual({ allowed: false, reason: 'account_denied' });
    expect(evaluateAccess({ ...open, allowedAffiliations: ['student'] }, { ...staff, listed: 'allow' })).toEqual({ allowed: true });
    expect(evaluateAccess({ ...open, allowedAffiliations: ['student'], requireEducation: true }, { ...staff, listed: 'allow' })).toEqual({ allowed: false, reason: 'education_required' });
    expect(evaluateAccess(open, { ...staff, status: 'suspended', listed: 'allow' })).toEqual({ allowed: false, reason: 'status_not_allowed' });
    expect(evaluateAccess({ ...open, allowedStatuses: ['active', 'revoked'] }, { ...staff, status: 'revoked' })).toEqual({ allowed: true });
    expect(evaluateAccess({ ...open, allowedAffiliations: ['student'] }, staff)).toEqual({ allowed: false, reason: 'affiliation_not_allowed' });
    expect(evaluateAccess(open, staff)).toEqual({ allowed: true });
  });

  test('departments: a listed unit admits itself and the units below it; both the affiliation and the department rule must pass', () => {
    const engineering = { ...open, allowedDepartments: ['eng', 'sci/phys'] };
    expect(evaluateAccess(engineering, staff)).toEqual({ allowed: true });
    expect(evaluateAccess(engineering, { ...staff, department: 'eng' })).toEqual({ allowed: true });
    expect(evaluateAccess(engineering, { ...staff, department: 'sci/phys/astro' })).toEqual({ allowed: true });
    const refused = { allowed: false, reason: 'department_not_allowed' };
    // A prefix of letters is not a level: "engineering" is not below "eng".
    expect(evaluateAccess(engineering, { ...staff, department: 'engineering' })).toEqual(refused);
    expect(evaluateAccess(engineering, { ...staff, department: 'sci' })).toEqual(refused);
    expect(evaluateAccess(engineering, { ...staff, department: null })).toEqual(refused);
    expect(evaluateAccess({ ...engineering, allowedAffiliations: ['faculty'] }, staff)).toEqual({ allowed: false, reason: 'affiliation_not_allowed' });
    // The allow list lets a person in whatever the department, as whatever the affiliation.
    expect(evaluateAccess(engineering, { ...staff, department: 'med', listed: 'allow' })).toEqual({ allowed: true });
  });

  test('a salvage client admits a revoked account only inside its salvage period; other clients never', () => {
    const revoked = { ...staff, status: 'revoked' as const };
    expect(evaluateAccess({ ...open, salvage: true }, { ...revoked, salvageOpen: true })).toEqual({ allowed: true });
    expect(evaluateAccess({ ...open, salvage: true }, revoked)).toEqual({ allowed: false, reason: 'salvage_over' });
    expect(evaluateAccess(open, { ...revoked, salvageOpen: true })).toEqual({ allowed: false, reason: 'status_not_allowed' });
    expect(evaluateAccess({ ...open, salvage: true }, { ...revoked, salvageOpen: true, listed: 'deny' })).toEqual({ allowed: false, reason: 'account_denied' });
    // Active accounts are judged as anywhere else.
    expect(evaluateAccess({ ...open, salvage: true }, staff)).toEqual({ allowed: true });
    expect(evaluateAccess({ ...open, salvage: true }, { ...staff, status: 'suspended' })).toEqual({ allowed: false, reason: 'status_not_allowed' });
  });

  test('a sign-in that is over without a second factor is refused where the client or the account demands one', () => {
    const strict = { ...open, requireMfa: true };
    const mfaRequired = { allowed: false, reason: 'mfa_required' };
    expect(evaluateAccess(strict, { ...staff, secondFactor: false })).toEqual(mfaRequired);
    expect(evaluateAccess(open, { ...staff, accountRequiresMfa: true, secondFactor: false })).toEqual(mfaRequired);
    expect(evaluateAccess(strict, { ...staff, secondFactor: true })).toEqual({ allowed: true });
    expect(evaluateAccess(open, { ...staff, secondFactor: false })).toEqual({ allowed: true });
    // During an authorization (nothing shown yet) the MFA steps ask for the factor instead.
    expect(evaluateAccess(strict, staff)).toEqual({ allowed: true });
    // The lists and the status still come first.
    expect(evaluateAccess(strict, { ...staff, secondFactor: false, listed: 'deny' })).toEqual({ allowed: false, reason: 'account_denied' });
    expect(evaluateAccess(strict, { ...staff, secondFactor: false, status: 'suspended' })).toEqual({ allowed: false, reason: 'status_not_allowed' });
  });
});
