import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { SAML } from '@node-saml/node-saml';
import { BINDING, NAMEID_FORMAT } from '../../src/saml/constants.ts';
import { SamlError, type SamlErrorCode } from '../../src/saml/saml-error.ts';
import { readSpMetadata } from '../../src/saml/sp-metadata.ts';
import { type TestKeyPair, testKeyPair } from '../support/saml-keys.ts';

// readSpMetadata over the shapes operators will register: what mod_auth_mellon's
// mellon_create_metadata.sh writes, what a Shibboleth SP serves at /Shibboleth.sso/Metadata, and the
// few values a cloud service such as Slack publishes. Certificates are generated per run.

const ARTIFACT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact';
const PAOS = 'urn:oasis:names:tc:SAML:2.0:bindings:PAOS';
const SOAP = 'urn:oasis:names:tc:SAML:2.0:bindings:SOAP';

let signing: TestKeyPair;
let encryption: TestKeyPair;

beforeAll(async () => {
  [signing, encryption] = await Promise.all([testKeyPair('rsa', 'mellon.example.ac.jp'), testKeyPair('rsa', 'shib.example.ac.jp')]);
});

/** The certificate body as metadata generators paste it: the PEM lines without the armour. */
function body(pem: string): string {
  return pem
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('-----'))
    .join('\n');
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

function expectRefused(xml: string, code: SamlErrorCode, message?: RegExp): void {
  let error: unknown;
  try {
    readSpMetadata(xml);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(SamlError);
  expect((error as SamlError).code).toBe(code);
  if (message) expect((error as SamlError).message).toMatch(message);
}

/** mellon_create_metadata.sh: default namespace, separate signing and encryption KeyDescriptors, POST index 0 as default plus Artifact and PAOS. */
function mellon(base = 'https://mellon.example.ac.jp/mellon'): string {
  const keyDescriptor = (use: string, pem: string) => `
    <KeyDescriptor use="${use}">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data>
          <ds:X509Certificate>${body(pem)}</ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>
    </KeyDescriptor>`;
  return `<EntityDescriptor entityID="${base}/metadata" xmlns="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
  <SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${keyDescriptor('signing', signing.certificatePem)}${keyDescriptor('encryption', encryption.certificatePem)}
    <SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${base}/logout" />
    <AssertionConsumerService index="0" isDefault="true" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${base}/postResponse" />
    <AssertionConsumerService index="1" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="${base}/artifactResponse" />
    <AssertionConsumerService index="2" Binding="urn:oasis:names:tc:SAML:2.0:bindings:PAOS" Location="${base}/paosResponse" />
  </SPSSODescriptor>
</EntityDescriptor>
`;
}

/** A Shibboleth SP 3 /Shibboleth.sso/Metadata: md: prefix, Extensions at two levels, one KeyDescriptor without use, SAML 1 bindings too. */
function shibboleth(host = 'https://shib.example.ac.jp'): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!--
This is example metadata only. Do *NOT* supply it as is without review,
and do *NOT* provide it in real time to your partners.
-->
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" ID="_f0c8ab9d4e2a3b1c" entityID="${host}/shibboleth">
  <md:Extensions xmlns:alg="urn:oasis:names:tc:SAML:metadata:algsupport">
    <alg:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha512"/>
    <alg:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
    <alg:SigningMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"/>
    <alg:SigningMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
  </md:Extensions>
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol urn:oasis:names:tc:SAML:1.1:protocol urn:oasis:names:tc:SAML:1.0:protocol">
    <md:Extensions>
      <init:RequestInitiator xmlns:init="urn:oasis:names:tc:SAML:profiles:SSO:request-init" Binding="urn:oasis:names:tc:SAML:profiles:SSO:request-init" Location="${host}/Shibboleth.sso/Login"/>
      <idpdisc:DiscoveryResponse xmlns:idpdisc="urn:oasis:names:tc:SAML:profiles:SSO:idp-discovery-protocol" Binding="urn:oasis:names:tc:SAML:profiles:SSO:idp-discovery-protocol" Location="${host}/Shibboleth.sso/Login" index="1"/>
      <mdui:UIInfo xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui"><mdui:DisplayName xml:lang="ja">学務システム</mdui:DisplayName></mdui:UIInfo>
    </md:Extensions>
    <md:KeyDescriptor>
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:KeyName>shib.example.ac.jp</ds:KeyName>
        <ds:X509Data>
          <ds:X509SubjectName>CN=shib.example.ac.jp</ds:X509SubjectName>
          <ds:X509Certificate>
${body(encryption.certificatePem)}
          </ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>
      <md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/>
      <md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#rsa-oaep"/>
    </md:KeyDescriptor>
    <md:ArtifactResolutionService Binding="${SOAP}" Location="${host}/Shibboleth.sso/Artifact/SOAP" index="1"/>
    <md:SingleLogoutService Binding="${SOAP}" Location="${host}/Shibboleth.sso/SLO/SOAP"/>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${host}/Shibboleth.sso/SLO/Redirect"/>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${host}/Shibboleth.sso/SLO/POST" ResponseLocation="${host}/Shibboleth.sso/SLO/POSTResponse"/>
    <md:SingleLogoutService Binding="${ARTIFACT}" Location="${host}/Shibboleth.sso/SLO/Artifact"/>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:NameIDFormat>
      urn:oasis:names:tc:SAML:2.0:nameid-format:transient
    </md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${host}/Shibboleth.sso/SAML2/POST" index="1"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST-SimpleSign" Location="${host}/Shibboleth.sso/SAML2/POST-SimpleSign" index="2"/>
    <md:AssertionConsumerService Binding="${ARTIFACT}" Location="${host}/Shibboleth.sso/SAML2/Artifact" index="3"/>
    <md:AssertionConsumerService Binding="${PAOS}" Location="${host}/Shibboleth.sso/SAML2/ECP" index="4"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${host}/Shibboleth.sso/SAML2/POST/alt" index="7" isDefault="true"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:1.0:profiles:browser-post" Location="${host}/Shibboleth.sso/SAML/POST" index="5" isDefault="false"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:1.0:profiles:artifact-01" Location="${host}/Shibboleth.sso/SAML/Artifact" index="6"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
`;
}

/** What a cloud service publishes: an entity ID, one ACS, a NameID format, no certificate. */
const SLACK = `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://slack.com">
  <SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</NameIDFormat>
    <AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://utokyo.enterprise.slack.com/sso/saml" index="0"/>
  </SPSSODescriptor>
</EntityDescriptor>`;

describe('readSpMetadata: realistic SPs', () => {
  test('mod_auth_mellon: signing and encryption certificates kept apart, POST default, Artifact and PAOS listed', () => {
    const metadata = readSpMetadata(mellon());
    expect(metadata).toMatchObject({
      entityId: 'https://mellon.example.ac.jp/mellon/metadata',
      acs: [
        { binding: BINDING.post, location: 'https://mellon.example.ac.jp/mellon/postResponse', index: 0, isDefault: true },
        { binding: ARTIFACT, location: 'https://mellon.example.ac.jp/mellon/artifactResponse', index: 1, isDefault: false },
        { binding: PAOS, location: 'https://mellon.example.ac.jp/mellon/paosResponse', index: 2, isDefault: false },
      ],
      slo: [{ binding: BINDING.redirect, location: 'https://mellon.example.ac.jp/mellon/logout', responseLocation: null }],
      authnRequestsSigned: true,
      wantAssertionsSigned: true,
      nameIdFormats: [],
    });
    expect(metadata.signingCertificates.map(fingerprint)).toEqual([fingerprint(signing.certificatePem)]);
    expect(metadata.encryptionCertificates.map(fingerprint)).toEqual([fingerprint(encryption.certificatePem)]);
    expect(metadata.signingCertificates[0]).toMatch(/^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n$/);
  });

  test('Shibboleth SP: Extensions ignored, a KeyDescriptor without use serves both, every ACS and SLO kept in order', () => {
    const metadata = readSpMetadata(shibboleth());
    const host = 'https://shib.example.ac.jp';
    expect(metadata.entityId).toBe(`${host}/shibboleth`);
    expect(metadata.acs.map(({ index, isDefault }) => [index, isDefault])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, false],
      [7, true],
      [5, false],
      [6, false],
    ]);
    expect(metadata.acs.filter((service) => service.binding === BINDING.post).map((service) => service.location)).toEqual([
      `${host}/Shibboleth.sso/SAML2/POST`,
      `${host}/Shibboleth.sso/SAML2/POST/alt`,
    ]);
    expect(metadata.slo).toEqual([
      { binding: SOAP, location: `${host}/Shibboleth.sso/SLO/SOAP`, responseLocation: null },
      { binding: BINDING.redirect, location: `${host}/Shibboleth.sso/SLO/Redirect`, responseLocation: null },
      { binding: BINDING.post, location: `${host}/Shibboleth.sso/SLO/POST`, responseLocation: `${host}/Shibboleth.sso/SLO/POSTResponse` },
      { binding: ARTIFACT, location: `${host}/Shibboleth.sso/SLO/Artifact`, responseLocation: null },
    ]);
    expect(metadata.signingCertificates.map(fingerprint)).toEqual([fingerprint(encryption.certificatePem)]);
    expect(metadata.encryptionCertificates.map(fingerprint)).toEqual([fingerprint(encryption.certificatePem)]);
    expect(metadata.nameIdFormats).toEqual([NAMEID_FORMAT.persistent, NAMEID_FORMAT.transient]);
    expect(metadata).toMatchObject({ authnRequestsSigned: false, wantAssertionsSigned: false });
  });

  test('Slack-like minimal metadata: one ACS, no certificate', () => {
    expect(readSpMetadata(SLACK)).toEqual({
      entityId: 'https://slack.com',
      acs: [{ binding: BINDING.post, location: 'https://utokyo.enterprise.slack.com/sso/saml', index: 0, isDefault: false }],
      slo: [],
      signingCertificates: [],
      encryptionCertificates: [],
      authnRequestsSigned: false,
      wantAssertionsSigned: false,
      nameIdFormats: [NAMEID_FORMAT.emailAddress],
    });
  });

  test("node-saml's generated metadata (an independent SP library)", () => {
    const saml = new SAML({
      callbackUrl: 'https://app.example.ac.jp/saml/acs',
      logoutCallbackUrl: 'https://app.example.ac.jp/saml/slo',
      issuer: 'https://app.example.ac.jp',
      idpCert: signing.certificatePem,
      privateKey: signing.privatePem,
      decryptionPvk: encryption.privatePem,
    });
    const metadata = readSpMetadata(saml.generateServiceProviderMetadata(encryption.certificatePem, signing.certificatePem));
    expect(metadata).toMatchObject({
      entityId: 'https://app.example.ac.jp',
      acs: [{ binding: BINDING.post, location: 'https://app.example.ac.jp/saml/acs', index: 1, isDefault: true }],
      slo: [{ binding: BINDING.post, location: 'https://app.example.ac.jp/saml/slo', responseLocation: null }],
      authnRequestsSigned: true,
      wantAssertionsSigned: true,
      nameIdFormats: [NAMEID_FORMAT.emailAddress],
    });
    expect(metadata.signingCertificates.map(fingerprint)).toEqual([fingerprint(signing.certificatePem)]);
    expect(metadata.encryptionCertificates.map(fingerprint)).toEqual([fingerprint(encryption.certificatePem)]);
  });

  test('the result is plain data that survives a JSON round trip (it is stored in a jsonb column)', () => {
    const metadata = readSpMetadata(mellon());
    expect(JSON.parse(JSON.stringify(metadata))).toEqual(metadata);
  });

  test('the same certificate in several KeyDescriptors is listed once', () => {
    const twice = mellon().replace(body(encryption.certificatePem), body(signing.certificatePem)).replace('<KeyDescriptor use="encryption">', '<KeyDescriptor>');
    const metadata = readSpMetadata(twice);
    expect(metadata.signingCertificates.map(fingerprint)).toEqual([fingerprint(signing.certificatePem)]);
    expect(metadata.encryptionCertificates.map(fingerprint)).toEqual([fingerprint(signing.certificatePem)]);
  });
});

describe('readSpMetadata: aggregates and refusals', () => {
  const idp = `<md:EntityDescriptor entityID="https://idp.example.ac.jp/idp/shibboleth"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.ac.jp/idp/profile/SAML2/Redirect/SSO"/></md:IDPSSODescriptor></md:EntityDescriptor>`;
  const aggregate = (...entities: string[]) => `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" Name="urn:example:federation">${entities.join('')}</md:EntitiesDescriptor>`;
  const inner = (xml: string) => xml.replace(/^<\?xml[^>]*\?>/, '').replace(/<!--[\s\S]*?-->/, '');

  test('an EntitiesDescriptor holding one SP (and an IdP, nested or not) gives that SP', () => {
    expect(readSpMetadata(aggregate(idp, inner(shibboleth()))).entityId).toBe('https://shib.example.ac.jp/shibboleth');
    expect(readSpMetadata(aggregate(aggregate(idp), aggregate(inner(shibboleth())))).entityId).toBe('https://shib.example.ac.jp/shibboleth');
  });

  test('an EntitiesDescriptor with two SPs is malformed, with none unsupported', () => {
    expectRefused(aggregate(inner(shibboleth()), inner(shibboleth('https://other.example.ac.jp'))), 'malformed', /2 service providers/);
    expectRefused(aggregate(idp), 'unsupported', /0 service providers/);
  });

  test("an IdP's metadata, or an SP speaking only SAML 1, is unsupported", () => {
    expectRefused(idp.replace('<md:EntityDescriptor', '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'), 'unsupported', /no SPSSODescriptor|no service provider/);
    expectRefused(SLACK.replace('protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"', 'protocolSupportEnumeration="urn:oasis:names:tc:SAML:1.1:protocol"'), 'unsupported', /SAML 2.0/);
  });

  test('another document than metadata is malformed', () => {
    expectRefused('<html><body>Sign in</body></html>', 'malformed', /EntityDescriptor/);
    expectRefused(SLACK.replace('xmlns="urn:oasis:names:tc:SAML:2.0:metadata"', 'xmlns="urn:example:not-metadata"'), 'malformed');
    expectRefused('{"entityId": "https://slack.com"}', 'malformed');
  });

  test('missing or invalid required values are malformed', () => {
    expectRefused(SLACK.replace(' entityID="https://slack.com"', ''), 'malformed', /entityID/);
    expectRefused(SLACK.replace('https://slack.com', `https://slack.com/${'x'.repeat(1024)}`), 'malformed', /1024/);
    expectRefused(SLACK.replace(/<AssertionConsumerService[^>]*\/>/, ''), 'malformed', /no AssertionConsumerService/);
    expectRefused(SLACK.replace(' index="0"', ''), 'malformed', /no index/);
    expectRefused(SLACK.replace(' index="0"', ' index="first"'), 'malformed', /index/);
    expectRefused(SLACK.replace(' Location="https://utokyo.enterprise.slack.com/sso/saml"', ''), 'malformed', /Location/);
    expectRefused(mellon().replace('index="1"', 'index="0"'), 'malformed', /one index/);
    expectRefused(mellon().replace('isDefault="true"', 'isDefault="yes"'), 'malformed', /boolean/);
    expectRefused(mellon().replace('use="encryption"', 'use="both"'), 'malformed', /use="both"/);
    expectRefused(mellon().replace(body(signing.certificatePem), 'bm90IGEgY2VydGlmaWNhdGU='), 'malformed', /not a certificate/);
    expectRefused(mellon().replace(body(signing.certificatePem), 'not*base64'), 'malformed', /not a certificate/);
  });

  test('hostile XML is refused as in messages; the size limit is 1 MiB', () => {
    expectRefused(`<!DOCTYPE md [<!ENTITY x SYSTEM "file:///etc/passwd">]>${SLACK.replace('https://slack.com', '&x;')}`, 'forbidden_xml');
    const padded = (bytes: number) => SLACK.replace('</EntityDescriptor>', `<!--${'x'.repeat(bytes - Buffer.byteLength(SLACK) - 7)}--></EntityDescriptor>`);
    expect(Buffer.byteLength(padded(1024 * 1024))).toBe(1024 * 1024);
    expect(readSpMetadata(padded(1024 * 1024)).entityId).toBe('https://slack.com');
    expectRefused(padded(1024 * 1024 + 1), 'too_large');
  });
});
