import { createHmac, type KeyObject } from 'node:crypto';
import type { AccountRow } from '../account/account.store.ts';
import { eduPersonClaims } from '../account/eduperson.ts';
import { ATTRIBUTE, ATTRNAME_FORMAT, NAMEID_FORMAT } from './constants.ts';

/**
 * What a SAML service provider may be told about the person: the attributes by the names operators
 * give them (`--attributes mail,displayName`), each sent under its URI name (the SAML2 profiles of
 * eduPerson and inetOrgPerson, the Subject Identifier profile, GakuNin's jaDisplayName), and the
 * NameID in each format. The values are the ones the OIDC side gives as claims (eduperson.ts).
 */
const ATTRIBUTE_KEYS = {
  eduPersonPrincipalName: 'eduPersonPrincipalName',
  eduPersonAffiliation: 'eduPersonAffiliation',
  eduPersonScopedAffiliation: 'eduPersonScopedAffiliation',
  eduPersonEntitlement: 'eduPersonEntitlement',
  mail: 'mail',
  displayName: 'displayName',
  jaDisplayName: 'jaDisplayName',
  givenName: 'givenName',
  sn: 'sn',
  'subject-id': 'subjectId',
  'pairwise-id': 'pairwiseId',
} as const satisfies Record<string, keyof typeof ATTRIBUTE>;

export type SamlAttributeName = keyof typeof ATTRIBUTE_KEYS;
export const SAML_ATTRIBUTE_NAMES = Object.keys(ATTRIBUTE_KEYS) as SamlAttributeName[];

export interface SamlAttribute {
  name: string;
  friendlyName: string;
  nameFormat: string;
  values: string[];
}

/** Who is signing in where: enough to say the person's identifiers for this SP. */
export interface Subject {
  account: AccountRow;
  /** The SP's entityID. */
  sp: string;
  /** The university's security domain (eduperson.ts: the realm suffix or the issuer's host). */
  scope: string;
  /** The key the pairwise identifiers are made with (derived from AKAMON_SECRET). */
  pairwiseKey: KeyObject;
}

/**
 * An identifier of the person for one SP: stable, opaque, and different for every SP, so that SPs
 * cannot join their records (the persistent NameID and pairwise-id). It is made from the account's
 * id, which is never reassigned, not from the Common ID.
 */
export function pairwiseValue(subject: Subject): string {
  return createHmac('sha256', subject.pairwiseKey).update(`${subject.sp}|${subject.account.id}`).digest('base64url').replace(/[-_]/g, '').slice(0, 32).toLowerCase();
}

function japaneseName(account: AccountRow): string | undefined {
  const parts = [account.family_name_ja, account.given_name_ja].filter(Boolean);
  return parts.length ? parts.join(' ') : undefined;
}

function attributeValues(name: SamlAttributeName, subject: Subject): string[] {
  const { account, scope } = subject;
  const edu = eduPersonClaims(account, scope);
  const one = (value: string | null | undefined) => (value ? [value] : []);
  switch (name) {
    case 'eduPersonPrincipalName':
      return [edu.eduperson_principal_name as string];
    case 'eduPersonAffiliation':
      return (edu.eduperson_affiliation as string[] | undefined) ?? [];
    case 'eduPersonScopedAffiliation':
      return (edu.eduperson_scoped_affiliation as string[] | undefined) ?? [];
    case 'eduPersonEntitlement':
      return (edu.eduperson_entitlement as string[] | undefined) ?? [];
    case 'mail':
      return one(account.email);
    case 'displayName':
      return one(account.name);
    case 'jaDisplayName':
      return one(japaneseName(account));
    case 'givenName':
      return one(account.given_name);
    case 'sn':
      return one(account.family_name);
    case 'subject-id':
      // Non-reassignable (the account's id), unlike a Common ID a university might give out again.
      return [`${account.id.replaceAll('-', '')}@${scope}`];
    case 'pairwise-id':
      return [`${pairwiseValue(subject)}@${scope}`];
  }
}

/**
 * The attributes released to this SP, those with a value, each under its URI name, or under the
 * name the SP wants (`renamed`: ATTRIBUTE=NAME pairs, such as Slack's mail=User.Email).
 */
export function releasedAttributes(released: readonly SamlAttributeName[], subject: Subject, renamed: readonly string[] = []): SamlAttribute[] {
  const names = new Map(renamed.map((pair) => pair.split('=') as [string, string]));
  return released
    .map((name) => {
      const own = names.get(name);
      const values = attributeValues(name, subject);
      return own
        ? { name: own, friendlyName: name, nameFormat: ATTRNAME_FORMAT.basic, values }
        : { name: ATTRIBUTE[ATTRIBUTE_KEYS[name]], friendlyName: name, nameFormat: ATTRNAME_FORMAT.uri, values };
    })
    .filter((attribute) => attribute.values.length > 0);
}

export type NameIdSetting = 'persistent' | 'transient' | 'email' | 'unspecified';

export interface NameId {
  value: string;
  format: string;
  nameQualifier?: string;
  spNameQualifier?: string;
}

/**
 * The NameID for this SP, or undefined when the account has no value for the format (email without
 * an address): the SP then gets InvalidNameIDPolicy. Transient ones are new for each assertion.
 */
export function nameIdFor(setting: NameIdSetting, subject: Subject & { idp: string; transient: () => string }): NameId | undefined {
  switch (setting) {
    case 'persistent':
      return { value: pairwiseValue(subject), format: NAMEID_FORMAT.persistent, nameQualifier: subject.idp, spNameQualifier: subject.sp };
    case 'transient':
      return { value: subject.transient(), format: NAMEID_FORMAT.transient, nameQualifier: subject.idp, spNameQualifier: subject.sp };
    case 'email':
      return subject.account.email ? { value: subject.account.email, format: NAMEID_FORMAT.emailAddress } : undefined;
    case 'unspecified':
      return { value: subject.account.common_id, format: NAMEID_FORMAT.unspecified };
  }
}

/** The setting a NameIDPolicy Format asks for; undefined for one Akamon does not give. */
export function nameIdSettingOf(format: string): NameIdSetting | undefined {
  const entries: Array<[string, NameIdSetting]> = [
    [NAMEID_FORMAT.persistent, 'persistent'],
    [NAMEID_FORMAT.transient, 'transient'],
    [NAMEID_FORMAT.emailAddress, 'email'],
    [NAMEID_FORMAT.unspecified, 'unspecified'],
  ];
  return entries.find(([uri]) => uri === format)?.[1];
}
