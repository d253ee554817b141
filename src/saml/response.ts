import { createPublicKey } from 'node:crypto';
import type { Element } from '@xmldom/xmldom';
import { ALG, NS, SAML_VERSION, STATUS, SUBJECT_CONFIRMATION_BEARER } from './constants.ts';
import { SamlError } from './saml-error.ts';
import { signRoot, type XmlSigningKey } from './sign.ts';
import { xmldom, xmlEncryption } from './xml-libraries.ts';
import { addSeconds, append, appendNameId, appendStatus, declare, newDocument, newId, newProtocolMessage, samlInstant, serialize, setAttributes, type SamlNameId } from './xml-build.ts';

export interface ResponseAttribute {
  name: string;
  friendlyName?: string;
  nameFormat: string;
  values: string[];
}

export interface ResponseInput {
  /** The IdP entityID: `${AKAMON_ISSUER}/saml/metadata`. */
  issuer: string;
  destination: string;
  /** The AuthnRequest's ID; null for IdP-initiated sign-in. */
  inResponseTo: string | null;
  /** The SP's entityID. */
  audience: string;
  recipient: string;
  notOnOrAfterSeconds: number;
  now: Date;
  nameId: SamlNameId;
  sessionIndex: string;
  authnInstant: Date;
  authnContextClassRef: string;
  attributes: ResponseAttribute[];
  sign: { response: boolean; assertion: boolean };
  key: XmlSigningKey;
  /** The SP's encryption certificate (PEM): the assertion is sent as an EncryptedAssertion. */
  encryptTo: string | null;
}

export interface StatusResponseInput {
  issuer: string;
  destination: string;
  inResponseTo: string | null;
  status: { top: string; second?: string; message?: string };
  now: Date;
  key: XmlSigningKey;
}

/** How far back Conditions/@NotBefore reaches, for SPs whose clock runs behind Akamon's. */
const CLOCK_SKEW_SECONDS = 60;

/**
 * The Response to a successful sign-in (Web Browser SSO profile, SAML profiles 4.1.4.2): one bearer
 * assertion for the SP, signed and/or inside a signed Response as the SP is registered. The
 * assertion is signed first, then encrypted when the SP has an encryption certificate, and the
 * Response is signed last, over the EncryptedAssertion, so each signature covers what is sent.
 * Asynchronous because xml-encryption is.
 */
export async function buildResponse(input: ResponseInput): Promise<string> {
  if (!(input.notOnOrAfterSeconds > 0)) throw new SamlError('unsupported', 'notOnOrAfterSeconds must be positive');
  // A bearer assertion over HTTP-POST must be signed, in itself or by the Response (profiles 4.1.3.5).
  if (!input.sign.response && !input.sign.assertion) throw new SamlError('unsupported', 'an SSO Response must be signed: the response, the assertion or both');
  let assertion = assertionXml(input);
  if (input.sign.assertion) assertion = signRoot(assertion, input.key);

  const { doc, root } = newProtocolMessage('samlp:Response', input);
  appendStatus(root, { top: STATUS.success });
  if (input.encryptTo) {
    const wrapper = append(root, NS.assertion, 'saml:EncryptedAssertion');
    wrapper.appendChild(doc.importNode(parseOwn(await encryptXml(assertion, input.encryptTo)), true));
  } else {
    root.appendChild(doc.importNode(parseOwn(assertion), true));
  }
  const xml = serialize(doc);
  return input.sign.response ? signRoot(xml, input.key) : xml;
}

/**
 * A signed Response without an assertion, telling the SP why there is none (core 3.2.2.2):
 * Responder/RequestDenied for an access-rule denial, Responder/NoPassive for IsPassive without a
 * session, and so on.
 */
export function buildStatusResponse(input: StatusResponseInput): string {
  if (input.status.top === STATUS.success) throw new SamlError('unsupported', 'a status response reports a failure: use buildResponse for a success');
  const { doc, root } = newProtocolMessage('samlp:Response', input);
  appendStatus(root, input.status);
  return signRoot(serialize(doc), input.key);
}

function assertionXml(input: ResponseInput): string {
  const { doc, root } = newDocument(NS.assertion, 'saml:Assertion');
  // Declared on the assertion itself, so it is complete when signed, encrypted or read on its own;
  // xs and xsi type the attribute values.
  declare(root, 'saml', NS.assertion);
  const typed = input.attributes.some((a) => a.values.length > 0);
  if (typed) {
    declare(root, 'xs', NS.xs);
    declare(root, 'xsi', NS.xsi);
  }
  setAttributes(root, { ID: newId(), Version: SAML_VERSION, IssueInstant: samlInstant(input.now) });
  append(root, NS.assertion, 'saml:Issuer', {}, input.issuer);

  const notOnOrAfter = samlInstant(addSeconds(input.now, input.notOnOrAfterSeconds));
  const subject = append(root, NS.assertion, 'saml:Subject');
  appendNameId(subject, input.nameId);
  const confirmation = append(subject, NS.assertion, 'saml:SubjectConfirmation', { Method: SUBJECT_CONFIRMATION_BEARER });
  append(confirmation, NS.assertion, 'saml:SubjectConfirmationData', { InResponseTo: input.inResponseTo, NotOnOrAfter: notOnOrAfter, Recipient: input.recipient });

  const conditions = append(root, NS.assertion, 'saml:Conditions', { NotBefore: samlInstant(addSeconds(input.now, -CLOCK_SKEW_SECONDS)), NotOnOrAfter: notOnOrAfter });
  append(append(conditions, NS.assertion, 'saml:AudienceRestriction'), NS.assertion, 'saml:Audience', {}, input.audience);

  const authn = append(root, NS.assertion, 'saml:AuthnStatement', { AuthnInstant: samlInstant(input.authnInstant), SessionIndex: input.sessionIndex });
  append(append(authn, NS.assertion, 'saml:AuthnContext'), NS.assertion, 'saml:AuthnContextClassRef', {}, input.authnContextClassRef);

  // An attribute without values says nothing, and the schema wants at least one Attribute in a
  // statement: both are left out.
  if (typed) {
    const statement = append(root, NS.assertion, 'saml:AttributeStatement');
    for (const attribute of input.attributes) {
      if (attribute.values.length === 0) continue;
      const element = append(statement, NS.assertion, 'saml:Attribute', { Name: attribute.name, NameFormat: attribute.nameFormat, FriendlyName: attribute.friendlyName });
      for (const value of attribute.values) {
        append(element, NS.assertion, 'saml:AttributeValue', {}, value).setAttributeNS(NS.xsi, 'xsi:type', 'xs:string');
      }
    }
  }
  return serialize(doc);
}

/** Encrypts the (signed) assertion to the SP's certificate: AES-256-GCM content, RSA-OAEP key transport. */
async function encryptXml(xml: string, certificatePem: string): Promise<string> {
  let publicKey;
  try {
    publicKey = createPublicKey(certificatePem);
  } catch {
    throw new SamlError('malformed', 'the SP encryption certificate is not a readable PEM certificate');
  }
  if (publicKey.asymmetricKeyType !== 'rsa') throw new SamlError('unsupported', 'the SP encryption certificate does not hold an RSA key: RSA-OAEP key transport needs one');
  return new Promise((resolve, reject) => {
    xmlEncryption().encrypt(
      xml,
      {
        rsa_pub: publicKey.export({ type: 'spki', format: 'pem' }),
        pem: certificatePem,
        encryptionAlgorithm: ALG.aes256Gcm,
        // rsa-oaep-mgf1p fixes MGF1 to SHA-1; the OAEP digest stays xml-encryption's SHA-1 default
        // too, the one pairing every SP stack (xmlsec1 in mellon included) decrypts.
        keyEncryptionAlgorithm: ALG.rsaOaepMgf1p,
        disallowEncryptionWithInsecureAlgorithm: true,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
}

/** Parses XML this module just produced (the signed assertion, the EncryptedData). */
function parseOwn(xml: string): Element {
  const doc = new (xmldom().DOMParser)({
    onError: (level, message) => {
      throw new SamlError('malformed', `building a SAML message produced XML that does not parse (${level}: ${message})`);
    },
  }).parseFromString(xml, 'text/xml');
  return doc.documentElement!;
}
