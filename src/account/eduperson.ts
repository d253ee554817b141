import type { AccountRow } from './account.store.ts';
import type { Config } from '../config/config.ts';
import type { Affiliation } from '../db/schema.ts';

/**
 * Akamon's affiliations in the eduPerson vocabulary (eduPersonAffiliation). Students, faculty and
 * staff are members; faculty and staff are employees too; alumni are "alum" and guests "affiliate",
 * neither of them members.
 */
const EDUPERSON_AFFILIATIONS: Readonly<Record<Affiliation, readonly string[]>> = {
  student: ['student', 'member'],
  faculty: ['faculty', 'employee', 'member'],
  staff: ['staff', 'employee', 'member'],
  alumni: ['alum'],
  guest: ['affiliate'],
};

/**
 * The security domain the scoped values name (`member@utac.example.ac.jp`): the realm people add to
 * their Common ID (AKAMON_REALM_SUFFIX), which is the university's own statement of membership,
 * else the issuer's host name, the one domain Akamon surely speaks for.
 */
export function eduPersonScope(config: Pick<Config, 'realmSuffix' | 'issuer'>): string {
  return config.realmSuffix ?? new URL(config.issuer).hostname;
}

/**
 * The claims of the `eduperson` scope, as the REFEDS OIDC profile names them: the principal name is
 * the Common ID at the scope, affiliations and entitlements are lists. A revoked account (it reaches
 * only a data-salvage client) is nobody's member any more and holds no entitlement: it keeps only
 * its principal name.
 */
export function eduPersonClaims(account: AccountRow, scope: string): Record<string, unknown> {
  const current = account.status !== 'revoked';
  const affiliations = current ? EDUPERSON_AFFILIATIONS[account.affiliation] : [];
  return {
    eduperson_principal_name: `${account.common_id}@${scope}`,
    eduperson_affiliation: affiliations.length ? [...affiliations] : undefined,
    eduperson_scoped_affiliation: affiliations.length ? affiliations.map((value) => `${value}@${scope}`) : undefined,
    eduperson_entitlement: current && account.entitlements.length ? [...account.entitlements] : undefined,
  };
}
