import { AFFILIATIONS } from '../account/account-input.ts';
import { ScimError } from './scim-error.ts';
import { excerpt } from '../shared/text.ts';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
/** Akamon's extension: what core SCIM has no place for (names in Japanese script and kana, affiliation, its end). */
export const AKAMON_SCHEMA = 'urn:akamon:scim:schemas:extension:account:2.0:User';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const EXTENSIONS = [ENTERPRISE_SCHEMA, AKAMON_SCHEMA] as const;

type Mutability = 'readOnly' | 'readWrite' | 'immutable';

/** An attribute as RFC 7643 section 7 describes it; the /Schemas answer is built from these. */
export interface Attribute {
  name: string;
  type: 'string' | 'boolean' | 'dateTime' | 'complex' | 'reference';
  multiValued?: boolean;
  required?: boolean;
  mutability?: Mutability;
  caseExact?: boolean;
  uniqueness?: 'none' | 'server';
  canonicalValues?: readonly string[];
  description: string;
  subAttributes?: readonly Attribute[];
}

const text = (name: string, description: string, more: Partial<Attribute> = {}): Attribute => ({ name, type: 'string', description, ...more });

const META: Attribute = {
  name: 'meta',
  type: 'complex',
  mutability: 'readOnly',
  description: 'Resource metadata.',
  subAttributes: [
    text('resourceType', 'Always User.', { mutability: 'readOnly' }),
    { name: 'created', type: 'dateTime', mutability: 'readOnly', description: 'When the account was created.' },
    { name: 'lastModified', type: 'dateTime', mutability: 'readOnly', description: 'When the account last changed; filter with gt/ge to sync.' },
    { name: 'location', type: 'reference', mutability: 'readOnly', description: 'The URI of this resource.' },
    text('version', 'A weak entity tag of the account; send it in If-Match.', { mutability: 'readOnly', caseExact: true }),
  ],
};

const SCHEMAS: Record<string, { name: string; description: string; attributes: readonly Attribute[] }> = {
  [USER_SCHEMA]: {
    name: 'User',
    description: 'An Akamon account. The SCIM id is the account uuid, which never changes.',
    attributes: [
      text('id', 'The account uuid.', { mutability: 'readOnly', caseExact: true, uniqueness: 'server' }),
      text('externalId', "The feeding system's own identifier of the person.", { caseExact: true }),
      text('userName', 'The Common ID (10 digits). Input may carry the realm (0123456789@utac.u-tokyo.ac.jp); it is answered plain.', {
        required: true,
        mutability: 'immutable',
        uniqueness: 'server',
      }),
      {
        name: 'name',
        type: 'complex',
        description: 'The name in Latin script. formatted is the name shown on pages and letters.',
        subAttributes: [
          text('formatted', 'The name as shown (required unless displayName is given).'),
          text('familyName', 'Family name in Latin script.'),
          text('givenName', 'Given name in Latin script.'),
        ],
      },
      text('displayName', 'The same as name.formatted.'),
      {
        name: 'emails',
        type: 'complex',
        multiValued: true,
        description: "Only the university-registered address (type work). The recovery address is the person's own and never set by SCIM.",
        subAttributes: [text('value', 'The address.'), text('type', 'work.', { canonicalValues: ['work'] }), { name: 'primary', type: 'boolean', description: 'Always true for the work address.' }],
      },
      { name: 'active', type: 'boolean', description: 'false suspends the account, true reactivates it; a revoked account is false and cannot be reactivated.' },
      { name: 'entitlements', type: 'complex', multiValued: true, description: 'eduPerson entitlement URIs.', subAttributes: [text('value', 'An absolute URI.', { caseExact: true })] },
      META,
    ],
  },
  [ENTERPRISE_SCHEMA]: {
    name: 'EnterpriseUser',
    description: 'RFC 7643 4.3; Akamon keeps the department.',
    attributes: [text('department', 'The department code, levels separated by "/" (eng/mech).')],
  },
  [AKAMON_SCHEMA]: {
    name: 'AkamonAccount',
    description: 'What an Akamon account holds beyond core SCIM.',
    attributes: [
      text('familyNameJa', 'Family name in Japanese script (山田).'),
      text('givenNameJa', 'Given name in Japanese script (花子).'),
      text('familyNameKana', 'Reading of the family name in katakana (ヤマダ); hiragana and half-width katakana are taken.'),
      text('givenNameKana', 'Reading of the given name in katakana (ハナコ).'),
      text('affiliation', 'The affiliation.', { required: true, canonicalValues: AFFILIATIONS }),
      { name: 'affiliationEnd', type: 'dateTime', description: 'The scheduled end of affiliation: the account is revoked then. null: none scheduled.' },
      text('status', 'active, suspended or revoked.', { mutability: 'readOnly', canonicalValues: ['active', 'suspended', 'revoked'] }),
      { name: 'revokedAt', type: 'dateTime', mutability: 'readOnly', description: 'When the account was revoked.' },
    ],
  },
};

/** RFC 7643 section 7 representation, with the defaults spelt out as clients expect them. */
function attributeJson(a: Attribute): Record<string, unknown> {
  return {
    name: a.name,
    type: a.type,
    multiValued: a.multiValued ?? false,
    description: a.description,
    required: a.required ?? false,
    caseExact: a.caseExact ?? false,
    mutability: a.mutability ?? 'readWrite',
    returned: a.name === 'id' ? 'always' : 'default',
    uniqueness: a.uniqueness ?? 'none',
    ...(a.canonicalValues ? { canonicalValues: a.canonicalValues } : {}),
    ...(a.type === 'reference' ? { referenceTypes: ['uri'] } : {}),
    ...(a.subAttributes ? { subAttributes: a.subAttributes.map(attributeJson) } : {}),
  };
}

export function schemaJson(id: string, baseUrl: string) {
  const schema = SCHEMAS[id]!;
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'],
    id,
    name: schema.name,
    description: schema.description,
    attributes: schema.attributes.map(attributeJson),
    meta: { resourceType: 'Schema', location: `${baseUrl}/Schemas/${id}` },
  };
}

export const SCHEMA_IDS = Object.keys(SCHEMAS);

/** A resolved attribute path: the schema, the attribute, the sub-attribute, and its canonical spelling. */
export interface AttributePath {
  schema: string;
  attribute: Attribute;
  sub?: Attribute;
  /** `userName`, `name.familyName`, `urn:...:enterprise:2.0:User:department`. */
  key: string;
}

const byName = (list: readonly Attribute[] | undefined, name: string) => list?.find((a) => a.name.toLowerCase() === name.toLowerCase());

/**
 * An attribute path as filters and PATCH write it (RFC 7644 3.10): names are case-insensitive, and
 * may be prefixed by their schema URN. Anything else is refused with `scimType`.
 */
export function resolvePath(raw: string, scimType: 'invalidFilter' | 'invalidPath'): AttributePath {
  let schema = USER_SCHEMA;
  let rest = raw;
  const urn = SCHEMA_IDS.find((id) => raw.toLowerCase().startsWith(`${id.toLowerCase()}:`));
  if (urn) {
    schema = urn;
    rest = raw.slice(urn.length + 1);
  }
  const [name, subName, ...more] = rest.split('.');
  const attribute = byName(SCHEMAS[schema]!.attributes, name ?? '');
  const sub = subName === undefined ? undefined : byName(attribute?.subAttributes, subName);
  if (!attribute || more.length || (subName !== undefined && !sub)) {
    throw new ScimError(400, scimType, `unknown attribute "${excerpt(raw)}"; see /Schemas for the attributes of a User`);
  }
  const prefix = schema === USER_SCHEMA ? '' : `${schema}:`;
  return { schema, attribute, sub, key: `${prefix}${attribute.name}${sub ? `.${sub.name}` : ''}` };
}

export function serviceProviderConfig(baseUrl: string, maxResults: number) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Akamon API token',
        description: 'Authorization: Bearer <API token of the provisioning role>, made with `akamon operator token-create --role provisioning`.',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${baseUrl}/ServiceProviderConfig` },
  };
}

export function userResourceType(baseUrl: string) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
    id: 'User',
    name: 'User',
    endpoint: '/Users',
    description: 'An Akamon account',
    schema: USER_SCHEMA,
    schemaExtensions: [
      { schema: ENTERPRISE_SCHEMA, required: false },
      { schema: AKAMON_SCHEMA, required: true },
    ],
    meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/User` },
  };
}
