import type { NoResetReason, ResetVia } from '../../account/reset-address.ts';

/** An account as the admin API shows it. */
export interface AccountJson {
  commonId: string;
  name: string;
  /** The university-registered address (set by operators). */
  email: string | null;
  /** The recovery address the person registered and confirmed. */
  recoveryEmail: string | null;
  /** Where a password reset by email goes (src/account/reset-address.ts). */
  passwordResetByEmail: { possible: true; via: ResetVia; reason: null } | { possible: false; via: null; reason: NoResetReason };
  affiliation: string;
  status: string;
  mustChangePassword: boolean;
  mfaRequired: boolean;
  passwordSetAt: string;
  revokeAt: string | null;
  revokeReason: string | null;
  revokedAt: string | null;
  createdAt: string;
  /** The fields of src/account/account-fields.ts, by their key. */
  emailVerified: boolean;
  familyName: string | null;
  givenName: string | null;
  familyNameJa: string | null;
  givenNameJa: string | null;
  familyNameKana: string | null;
  givenNameKana: string | null;
  department: string | null;
  entitlements: string[];
  /** Only in `account show`: when the national ID card was linked, if it is. */
  identityLink?: { linkedAt: string } | null;
  /** Only in `account show`: the second factors, never their secrets. */
  factors?: Array<{ kind: string; label: string; default: boolean; createdAt: string; lastUsedAt: string | null }>;
}

/** What creating an account or reissuing its password answers; the password is shown once. */
export interface IssuedJson {
  commonId: string;
  initialPassword: string;
  account: AccountJson;
}
