import type { AccountRow } from '../account/account.store.ts';
import { NAME_FORMS, type NameForm } from './claims-locales.ts';
import { eduPersonClaims } from '../account/eduperson.ts';

const NAME_CLAIMS = ['name', 'family_name', 'given_name'] as const;
type NameClaim = (typeof NAME_CLAIMS)[number];

/**
 * Every scope Akamon answers and the claims it releases under it: the provider's `claims`
 * configuration, hence discovery's scopes_supported and claims_supported (which list exactly
 * these, with each language-tagged name claim), the password grant's scopes, and the catalogue
 * in docs/relying-parties/claims.md. A scope or claim not here is ignored where it is asked for.
 */
export const SCOPE_CLAIMS = {
  // acr, amr, auth_time (and salvage, for a closed account at a salvage client) ride with the
  // openid scope so that every ID token carries them, asked for or not.
  openid: ['sub', 'acr', 'amr', 'auth_time', 'salvage'],
  profile: [...NAME_CLAIMS, ...NAME_CLAIMS.flatMap((claim) => NAME_FORMS.map((form) => `${claim}#${form}`)), 'preferred_username', 'affiliation', 'department'],
  email: ['email', 'email_verified'],
  eduperson: ['eduperson_principal_name', 'eduperson_affiliation', 'eduperson_scoped_affiliation', 'eduperson_entitlement'],
} as const satisfies Record<string, readonly string[]>;

export const CLAIM_SCOPES: ReadonlySet<string> = new Set(Object.keys(SCOPE_CLAIMS));

const SCOPE_OF_CLAIM: ReadonlyMap<string, string> = new Map(Object.entries(SCOPE_CLAIMS).flatMap(([scope, claims]) => claims.map((claim) => [claim, scope] as const)));

/**
 * The scope whose consent covers `claim`, asked for by itself in the claims parameter: the consent
 * page shows that scope's text, so the person sees what the claim reveals. A language-tagged claim
 * (family_name#ja-Kana-JP) goes with its base claim; a claim of no scope has none and is not granted.
 */
export function scopeOfClaim(claim: string): string | undefined {
  return SCOPE_OF_CLAIM.get(claim.split('#')[0]);
}

/** What the claims take from the configuration. */
export interface ClaimSettings {
  /** The eduPerson scope (eduperson.ts). */
  eduPersonScope: string;
}

type Parts = Record<Exclude<NameClaim, 'name'>, string | null>;

/** The name in one form, in parts; `name` is composed in that form's order. */
function partsIn(account: AccountRow, form: NameForm): Parts {
  if (form === 'en') return { family_name: account.family_name, given_name: account.given_name };
  if (form === 'ja-Jpan-JP') return { family_name: account.family_name_ja, given_name: account.given_name_ja };
  return { family_name: account.family_name_kana, given_name: account.given_name_kana };
}

/** Given name first in Latin script ("Hanako Yamada"), family name first in Japanese ("山田 花子", "ヤマダ ハナコ"). */
function composed(parts: Parts, form: NameForm): string | undefined {
  const order = form === 'en' ? [parts.given_name, parts.family_name] : [parts.family_name, parts.given_name];
  return order.filter(Boolean).join(' ') || undefined;
}

/**
 * The name claims: each form the account has under its language tag, always, so that a relying
 * party reading `family_name#ja-Kana-JP` finds it whatever else it asked; and untagged, the form
 * claims_locales asks for first among those the account has. Without one, `name` is the name as
 * the operator gave it and the parts are in Latin script, else in Japanese script. An account with
 * only a name keeps that name and nothing else.
 */
function nameClaims(account: AccountRow, requested: readonly NameForm[]): Record<string, string | undefined> {
  const values = new Map<NameForm, Record<NameClaim, string | undefined>>();
  for (const form of NAME_FORMS) {
    const parts = partsIn(account, form);
    values.set(form, { name: composed(parts, form), family_name: parts.family_name ?? undefined, given_name: parts.given_name ?? undefined });
  }
  const claims: Record<string, string | undefined> = {};
  for (const claim of NAME_CLAIMS) {
    const fallback: readonly NameForm[] = claim === 'name' ? [] : ['en', 'ja-Jpan-JP'];
    const untagged = [...requested, ...fallback].map((form) => values.get(form)![claim]).find(Boolean);
    claims[claim] = untagged ?? (claim === 'name' ? account.name : undefined);
    for (const form of NAME_FORMS) claims[`${claim}#${form}`] = values.get(form)![claim];
  }
  return claims;
}

/**
 * The address the university registered, and whether it is verified: the university vouches for
 * it (email_verified, set by the operator or the import), or the person confirmed this very address
 * as their recovery address with a mailed code. The recovery address itself serves recovery only
 * and is never released.
 */
function emailClaims(account: AccountRow): Record<string, unknown> {
  if (!account.email) return {};
  const confirmed = account.recovery_email_verified_at !== null && account.recovery_email?.toLowerCase() === account.email.toLowerCase();
  return { email: account.email, email_verified: account.email_verified || confirmed };
}

/**
 * Every claim of an account that a scope in SCOPE_CLAIMS names; the provider keeps those of the
 * granted scopes and of the claims parameter. `requested` are the name forms of claims_locales.
 */
export function accountClaims(account: AccountRow, requested: readonly NameForm[], settings: ClaimSettings): { sub: string; [claim: string]: unknown } {
  return {
    sub: account.id,
    ...nameClaims(account, requested),
    preferred_username: account.common_id,
    affiliation: account.affiliation,
    department: account.department ?? undefined,
    ...emailClaims(account),
    ...eduPersonClaims(account, settings.eduPersonScope),
  };
}
