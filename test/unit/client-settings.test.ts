import { afterAll, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clientInput } from '../../src/admin/admin-api.ts';
import { OptionReader, parseCommand } from '../../src/cli/args.ts';
import { clientFields, clientGroup, clientLines, spGroup } from '../../src/cli/commands/client.ts';
import {
  CLIENT_SETTINGS,
  SETTING_ENTRIES,
  checkValues,
  defaultValues,
  mergeValues,
  secretBytes,
  settingEntries,
  storedForm,
  storedValues,
  type ClientInput,
  type ClientValues,
  type ClientView,
  type Protocol,
  type Setting,
  type SettingKey,
} from '../../src/client/client-settings.ts';
import type { ClientRow } from '../../src/client/client.store.ts';
import type { DomainError } from '../../src/shared/errors.ts';
import { testKeyPair } from '../support/saml-keys.ts';

/**
 * The table of client settings drives the admin API, the store mapping and the CLI: every setting,
 * given a value other than its default, must come back unchanged through each of them. A setting
 * added to the table without a sample here fails to compile and fails the first test.
 */

interface Sample<K extends SettingKey> {
  value: ClientValues[K];
  /** The value as it is kept, where that is a normal form of what was given. */
  kept?: ClientValues[K];
  /** Other settings this one needs to be valid. */
  with?: ClientInput;
}

const PUBLIC_JWK = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k1' };

/** An SP's certificate (base64 DER, as metadata carries it), made here rather than kept in the test. */
const CERTIFICATE = (await testKeyPair('rsa')).certificatePem.replace(/-----[A-Z ]+-----|\s/g, '');

/** SAML metadata as an SP publishes it: one HTTP-POST consumer service, a logout endpoint, no certificate. */
const SP_METADATA = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://wiki.example.ac.jp/sp">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://wiki.example.ac.jp/slo"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://wiki.example.ac.jp/acs" index="0"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>`;
const SP_METADATA_READ = {
  entityId: 'https://wiki.example.ac.jp/sp',
  acs: [{ binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', location: 'https://wiki.example.ac.jp/acs', index: 0, isDefault: false }],
  slo: [{ binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', location: 'https://wiki.example.ac.jp/slo', responseLocation: null }],
  signingCertificates: [],
  encryptionCertificates: [],
  authnRequestsSigned: false,
  wantAssertionsSigned: false,
  nameIdFormats: [],
};

const SAMPLES: { [K in SettingKey]: Sample<K> } = {
  name: { value: 'Library System' },
  nameJa: { value: '図書館システム' },
  firstParty: { value: true },
  maxPasswordLength: { value: 32 },
  requireMfa: { value: true },
  mfaMaxAge: { value: 600 },
  allowedAffiliations: { value: ['student', 'faculty'] },
  allowedDepartments: { value: ['eng/mech', 'sci'] },
  allowedStatuses: { value: ['active', 'suspended'] },
  requireEducation: { value: true },
  salvage: { value: true },
  listed: { value: true },
  description: { value: 'Books and journals' },
  homepageUrl: { value: 'https://lib.example.ac.jp/' },
  mfaWarningFrom: { value: '2027-04-01', kept: '2027-03-31T15:00:00.000Z' },
  mfaRequiredFrom: { value: '2027-10-01T00:00:00.000Z' },
  redirectUris: { value: ['https://lib.example.ac.jp/cb', 'https://lib.example.ac.jp/cb2'] },
  public: { value: true },
  tokenEndpointAuthMethod: { value: 'client_secret_jwt' },
  jwks: { value: { keys: [PUBLIC_JWK] }, with: { tokenEndpointAuthMethod: 'private_key_jwt' } },
  jwksUri: { value: 'https://lib.example.ac.jp/jwks.json', with: { tokenEndpointAuthMethod: 'private_key_jwt' } },
  pairwise: { value: true },
  postLogoutRedirectUris: { value: ['https://lib.example.ac.jp/bye'] },
  backchannelLogoutUri: { value: 'http://lib.example.ac.jp/logout' },
  legacyPassword: { value: true },
  clientCredentials: { value: true },
  deviceFlow: { value: true },
  resourceServer: { value: 'https://api.example.ac.jp/library' },
  resources: { value: ['https://api.example.ac.jp/library', 'https://api.example.ac.jp/grades'] },
  // Given as XML (admin API, CLI file), kept as read.
  spMetadata: { value: SP_METADATA as never, kept: SP_METADATA_READ as never },
  nameIdFormat: { value: 'transient' },
  signed: { value: 'response' },
  encryptAssertions: {
    value: true,
    with: {
      spMetadata: SP_METADATA.replace(
        '<md:SingleLogoutService',
        `<md:KeyDescriptor use="encryption"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${CERTIFICATE}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService`,
      ) as never,
    },
  },
  attributes: { value: ['eduPersonPrincipalName', 'mail'] },
  attributeNames: { value: ['mail=User.Email'], with: { attributes: ['mail'] } },
  signedRequests: {
    value: true,
    with: {
      spMetadata: SP_METADATA.replace(
        '<md:SingleLogoutService',
        `<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${CERTIFICATE}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService`,
      ) as never,
    },
  },
  idpInitiated: { value: true },
};

const BASE: ClientInput = { name: 'Base', redirectUris: ['https://rp.example.ac.jp/cb'] };
const SAML_BASE: ClientInput = { name: 'Wiki', spMetadata: SP_METADATA as never };
const ENV = { allowHttp: false, timeZone: 'Asia/Tokyo' };
/** The protocol whose setting this is (a system setting is tried as an OIDC client's). */
const protocolOf = (key: SettingKey): Protocol => (settingEntries('oidc').some(([k]) => k === key) ? 'oidc' : 'saml');
const entries = SETTING_ENTRIES.map(([key, setting]) => ({ key, setting, sample: SAMPLES[key] as Sample<SettingKey>, protocol: protocolOf(key) }));

/** A stored row as the database gives it back: the columns written, the registration, the times. */
function rowOf(clientId: string, values: ClientValues, protocol: Protocol = 'oidc'): ClientRow {
  const { columns, metadata } = storedForm(clientId, checkValues(values, ENV, protocol), protocol);
  return { client_id: clientId, client_secret_enc: null, metadata, created_at: new Date(0), updated_at: new Date(0), ...columns } as unknown as ClientRow;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'akamon-settings-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** The command line an operator types for a value. */
function argvFor(setting: Setting<unknown>, value: unknown): string[] {
  const option = `--${setting.option}`;
  switch (setting.type.kind) {
    case 'flag':
      return value ? [option] : [`--no-${setting.option}`];
    case 'uris':
      return (value as string[]).flatMap((v) => [option, v]);
    case 'list':
      return [option, value === null ? 'any' : (value as string[]).join(',')];
    case 'jwks': {
      const file = path.join(work, `${setting.option}.json`);
      fs.writeFileSync(file, JSON.stringify(value));
      return [option, file];
    }
    case 'saml-metadata': {
      const file = path.join(work, `${setting.option}.xml`);
      fs.writeFileSync(file, String(value));
      return [option, file];
    }
    default:
      return [option, String(value)];
  }
}

const updateOf = (protocol: Protocol) => (protocol === 'saml' ? spGroup : clientGroup).commands.find((c) => c.name === 'update')!;
const cliFields = (argv: string[], protocol: Protocol = 'oidc') => clientFields(new OptionReader('update', parseCommand('update', argv, updateOf(protocol).options!).values), settingEntries(protocol));

describe('the client settings table', () => {
  test('every setting has a sample here, different from its default', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(Object.keys(CLIENT_SETTINGS).sort());
    for (const { key, setting, sample } of entries) expect([key, sample.value]).not.toEqual([key, setting.default]);
  });

  test('every setting has help in English and Japanese, and a label', () => {
    for (const { key, setting } of entries) {
      expect([key, setting.help.en.length > 10, /[\u3040-\u30ff\u4e00-\u9fff]/.test(setting.help.ja), setting.shown.label.length > 0]).toEqual([key, true, true, true]);
    }
    const options = SETTING_ENTRIES.map(([, setting]) => setting.option);
    expect(new Set(options).size).toBe(options.length);
  });

  test.each(entries)('$key round-trips the admin API, the store and the CLI', async ({ key, setting, sample, protocol }) => {
    const given = { [key]: sample.value } as ClientInput;
    const kept = sample.kept ?? sample.value;
    const base = protocol === 'saml' ? SAML_BASE : BASE;
    // Admin API: the JSON body's field becomes the same input.
    expect(clientInput(JSON.parse(JSON.stringify(given)))).toEqual(given);
    // Store: written to its column or the registration, read back as the same value.
    const values = mergeValues(defaultValues(), { ...base, ...sample.with, ...given });
    const view = storedValues(rowOf('rp-1', values, protocol));
    expect(view[key]).toEqual(kept);
    // CLI: the option gives the same field the admin API takes; --no-option returns to the default.
    expect(await cliFields(argvFor(setting, sample.value), protocol)).toEqual(given);
    if (`no-${setting.option}` in updateOf(protocol).options!) expect(await cliFields([`--no-${setting.option}`], protocol)).toEqual({ [key]: setting.default });
    // Display: `client show` (`sp show`) prints it under its label, and differently from the default.
    const shown = clientLines({ ...view, clientId: 'rp-1', protocol, createdAt: '', updatedAt: '' } as ClientView);
    const plain = clientLines({ ...storedValues(rowOf('rp-1', mergeValues(defaultValues(), base), protocol)), clientId: 'rp-1', protocol, createdAt: '', updatedAt: '' } as ClientView);
    const line = shown.find(([label]) => label === setting.shown.label);
    expect(line).toBeDefined();
    if (!['name', 'redirectUris', 'spMetadata'].includes(key)) expect(line).not.toEqual(plain.find(([label]) => label === setting.shown.label));
  });

  test.each(['oidc', 'saml'] as const)('help of %s create and update lists every option of its kind, and only those', (protocol) => {
    const group = protocol === 'saml' ? spGroup : clientGroup;
    const create = group.commands.find((c) => c.name === 'create')!;
    const update = group.commands.find((c) => c.name === 'update')!;
    const own = settingEntries(protocol);
    for (const [, setting] of own) {
      expect(create.optionHelp!.some((line) => line.includes(`--${setting.option}`))).toBe(true);
      expect(create.synopsis).toContain(`--${setting.option}`);
      if (`no-${setting.option}` in update.options!) expect(update.optionHelp!.join('\n')).toContain(`--no-${setting.option}`);
    }
    for (const [key, setting] of SETTING_ENTRIES) if (!own.some(([k]) => k === key)) expect(create.options).not.toHaveProperty(setting.option);
  });

  test('a setting of the other protocol is refused: an OIDC client has no SAML metadata, an SP no redirect URI', () => {
    expect(() => checkValues(mergeValues(defaultValues(), { ...BASE, nameIdFormat: 'transient' }), ENV, 'oidc')).toThrow(/nameIdFormat \(--name-id\) is not a setting of an OpenID Connect client/);
    expect(() => checkValues(mergeValues(defaultValues(), { ...SAML_BASE, redirectUris: ['https://x.example.ac.jp/cb'] }), ENV, 'saml')).toThrow(/not a setting of a SAML service provider/);
    expect(() => checkValues(mergeValues(defaultValues(), { name: 'No metadata' }), ENV, 'saml')).toThrow(/needs its metadata/);
    expect(() => checkValues(mergeValues(defaultValues(), { ...SAML_BASE, encryptAssertions: true }), ENV, 'saml')).toThrow(/encryption certificate/);
    // A name for an attribute not released, a name twice, a pair that is not one: refused.
    expect(() => checkValues(mergeValues(defaultValues(), { ...SAML_BASE, attributeNames: ['mail=User.Email'] }), ENV, 'saml')).toThrow(/not released/);
    for (const names of [['mail=a', 'mail=b'], ['mail'], ['nosuch=x'], ['mail=<x>']]) {
      expect(() => checkValues(mergeValues(defaultValues(), { ...SAML_BASE, attributes: ['mail'], attributeNames: names }), ENV, 'saml')).toThrow(/ATTRIBUTE=NAME/);
    }
    const wantsSigned = SP_METADATA.replace('protocolSupportEnumeration', 'WantAssertionsSigned="true" protocolSupportEnumeration');
    expect(() => checkValues(mergeValues(defaultValues(), { ...SAML_BASE, spMetadata: wantsSigned as never, signed: 'response' }), ENV, 'saml')).toThrow(/WantAssertionsSigned/);
    // A SAML SP is stored with its registration document and no OIDC registration of its own.
    const { columns, metadata } = storedForm('https://wiki.example.ac.jp/sp', checkValues(mergeValues(defaultValues(), SAML_BASE), ENV, 'saml'), 'saml');
    expect(metadata).toEqual({ client_id: 'https://wiki.example.ac.jp/sp', client_name: 'Wiki', grant_types: [] });
    expect(columns).toMatchObject({ protocol: 'saml', name: 'Wiki', saml: { spMetadata: SP_METADATA_READ, nameIdFormat: 'persistent', signed: 'both', attributes: [] } });
  });

  test("an ordinary client's registration is what it always was", () => {
    const { metadata, columns } = storedForm('rp-1', checkValues(mergeValues(defaultValues(), BASE), ENV, 'oidc'), 'oidc');
    expect(metadata).toEqual({
      client_id: 'rp-1',
      client_name: 'Base',
      redirect_uris: ['https://rp.example.ac.jp/cb'],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      post_logout_redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      subject_type: 'public',
      first_party: false,
    });
    expect(columns).toMatchObject({ name: 'Base', allowed_statuses: ['active'], allowed_affiliations: null, resource_server: null, resources: [] });
    const grants = storedForm('rp-1', checkValues(mergeValues(defaultValues(), { ...BASE, legacyPassword: true, clientCredentials: true }), ENV, 'oidc'), 'oidc').metadata.grant_types;
    expect(grants).toEqual(['authorization_code', 'refresh_token', 'password', 'client_credentials']);
    // An API signs nobody in: no response type, no grant.
    const api = storedForm('api-1', checkValues(mergeValues(defaultValues(), { name: 'API', resourceServer: 'https://api.example.ac.jp/x' }), ENV, 'oidc'), 'oidc').metadata;
    expect(api).toMatchObject({ redirect_uris: [], response_types: [], grant_types: [] });
    // A command-line tool signs people in through another device only: the device grant and refresh.
    const cli = storedForm('cli-1', checkValues(mergeValues(defaultValues(), { name: 'HPC login', deviceFlow: true, public: true }), ENV, 'oidc'), 'oidc').metadata;
    expect(cli).toMatchObject({
      redirect_uris: [],
      response_types: [],
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    });
    const both = storedForm('rp-2', checkValues(mergeValues(defaultValues(), { ...BASE, deviceFlow: true }), ENV, 'oidc'), 'oidc').metadata.grant_types;
    expect(both).toEqual(['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code']);
  });

  test('public is a shorthand of the none method; contradicting it is refused', () => {
    expect(mergeValues(defaultValues(), { public: true }).tokenEndpointAuthMethod).toBe('none');
    expect(mergeValues({ ...defaultValues(), tokenEndpointAuthMethod: 'none' }, { public: false }).tokenEndpointAuthMethod).toBe('client_secret_basic');
    expect(mergeValues({ ...defaultValues(), tokenEndpointAuthMethod: 'client_secret_post' }, { public: false }).tokenEndpointAuthMethod).toBe('client_secret_post');
    expect(() => mergeValues(defaultValues(), { public: true, tokenEndpointAuthMethod: 'private_key_jwt' })).toThrow(/contradict/);
  });

  test('each check refuses with its own code', () => {
    const codeOf = (input: ClientInput) => {
      try {
        checkValues(mergeValues(defaultValues(), { ...BASE, ...input }), ENV, 'oidc');
        return 'accepted';
      } catch (error) {
        return (error as DomainError).code;
      }
    };
    expect(codeOf({ name: ' ' })).toBe('invalid_name');
    expect(codeOf({ maxPasswordLength: 7 })).toBe('invalid_max_password_length');
    expect(codeOf({ mfaMaxAge: 59 })).toBe('invalid_mfa_max_age');
    expect(codeOf({ allowedAffiliations: [] })).toBe('invalid_affiliation');
    expect(codeOf({ allowedStatuses: ['gone' as never] })).toBe('invalid_status');
    expect(codeOf({ description: 'a\u202eb' })).toBe('invalid_description');
    expect(codeOf({ mfaWarningFrom: 'soon' })).toBe('invalid_date');
    expect(codeOf({ redirectUris: ['http://rp.example.ac.jp/cb'] })).toBe('invalid_uri');
    expect(codeOf({ redirectUris: [] })).toBe('invalid_uri');
    expect(codeOf({ redirectUris: [], clientCredentials: true })).toBe('accepted');
    expect(codeOf({ redirectUris: [], deviceFlow: true, public: true })).toBe('accepted');
    expect(codeOf({ tokenEndpointAuthMethod: 'tls_client_auth' as never })).toBe('invalid_client_metadata');
    expect(codeOf({ tokenEndpointAuthMethod: 'private_key_jwt' })).toBe('invalid_client_metadata');
    expect(codeOf({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ ...PUBLIC_JWK, d: 'secret' }] } })).toBe('invalid_client_metadata');
    expect(codeOf({ public: true, clientCredentials: true })).toBe('invalid_client_metadata');
    expect(codeOf({ public: true, resourceServer: 'https://api.example.ac.jp/x' })).toBe('invalid_client_metadata');
  });

  test('client_secret_jwt gets a secret long enough for HS512; key and public clients none', () => {
    expect(secretBytes('client_secret_basic')).toBe(32);
    expect(secretBytes('client_secret_post')).toBe(32);
    expect(secretBytes('client_secret_jwt')).toBe(64);
    expect(secretBytes('private_key_jwt')).toBeNull();
    expect(secretBytes('none')).toBeNull();
  });
});
