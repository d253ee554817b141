import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import type { Document, Element, Node } from '@xmldom/xmldom';
import type { HashAlgorithm, SignatureAlgorithm, SignedXml } from 'xml-crypto';
import { ALG, NS, URL_ENCODING_DEFLATE } from './constants.ts';
import { SamlError } from './saml-error.ts';
import { attribute, elementsNamed, isXmlId } from './xml-read.ts';
import { xmlCrypto, xmldom } from './xml-libraries.ts';

// The boundary where untrusted SAML input becomes something to act on: bytes from a browser
// (bindings) or an operator (metadata) become one safe DOM, and signatures over it are checked
// against registered certificates only. Every refusal is a SamlError, never a parser or zlib exception.

// ---- Parsing

/** The nesting a SAML message or metadata needs is about ten; recursion over deeper input could exhaust the stack. */
const MAX_DEPTH = 64;

/** Characters XML 1.0 forbids (section 2.2), raw or as character references: xmldom lets them through. */
const FORBIDDEN_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/u;

/**
 * Parses `text` as one XML document, refusing what a SAML message or metadata never needs and an
 * attacker can use: a DOCTYPE (internal subsets declare entities: XXE, billion laughs) is
 * `forbidden_xml` before the parser sees it, as is any processing instruction but the XML
 * declaration; every parser error and warning is `malformed` (xmldom otherwise recovers and
 * builds a guessed tree); more than `maxBytes` of UTF-8 is `too_large`.
 */
export function parseXml(text: string, maxBytes = 64 * 1024): Document {
  if (Buffer.byteLength(text, 'utf8') > maxBytes) throw new SamlError('too_large', `XML larger than ${maxBytes} bytes`);
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  if (/<!(DOCTYPE|ENTITY)/i.test(source)) throw new SamlError('forbidden_xml', 'XML with a DOCTYPE or entity declaration');
  let document: Document;
  // xmldom rewraps what onError throws, so the first report is kept here for the refusal's message.
  let report: string | null = null;
  // Outside the try: a library that failed to load is the server's fault, not the message's.
  const { DOMParser } = xmldom();
  try {
    document = new DOMParser({
      locator: false,
      onError: (level, message) => {
        report ??= `XML ${level}: ${message}`;
        throw new Error(report);
      },
    }).parseFromString(source, 'application/xml');
  } catch (error) {
    throw new SamlError('malformed', report ?? `XML not well-formed: ${(error as Error).message}`);
  }
  checkTree(document);
  return document;
}

/** Walks the whole tree once (iteratively: depth is what it bounds) for what the parser accepted but XML or SAML does not. */
function checkTree(document: Document): void {
  const stack: Array<{ node: Node; depth: number }> = [{ node: document, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (depth > MAX_DEPTH) throw new SamlError('too_large', `XML nested deeper than ${MAX_DEPTH} elements`);
    switch (node.nodeType) {
      case node.DOCUMENT_TYPE_NODE:
      case node.ENTITY_REFERENCE_NODE:
      case node.ENTITY_NODE:
        throw new SamlError('forbidden_xml', 'XML with a DOCTYPE or entity');
      case node.PROCESSING_INSTRUCTION_NODE:
        // xmldom itself refuses an XML declaration anywhere but at the start.
        if (node.nodeName !== 'xml') throw new SamlError('forbidden_xml', `XML with the processing instruction <?${node.nodeName}?>`);
        checkDeclaration((node as unknown as { data: string }).data);
        break;
      case node.TEXT_NODE:
      case node.CDATA_SECTION_NODE:
      case node.COMMENT_NODE:
        if (FORBIDDEN_CHARACTER.test(node.nodeValue ?? '')) throw new SamlError('malformed', 'XML with a character XML 1.0 forbids');
        break;
      case node.ELEMENT_NODE:
        for (const attribute of Array.from((node as Element).attributes)) {
          if (FORBIDDEN_CHARACTER.test(attribute.value)) throw new SamlError('malformed', 'XML with a character XML 1.0 forbids');
        }
        break;
    }
    for (const child of Array.from(node.childNodes)) stack.push({ node: child, depth: depth + 1 });
  }
}

/** Messages arrive as UTF-8 (the bindings decode them so); a declaration claiming another encoding would be read wrongly. */
function checkDeclaration(declaration: string): void {
  const encoding = /encoding\s*=\s*["']([^"']*)["']/.exec(declaration)?.[1];
  if (encoding !== undefined && !/^utf-?8$/i.test(encoding)) throw new SamlError('unsupported', `XML in encoding ${encoding}: only UTF-8 is accepted`);
}

// ---- Bindings: turning what a browser carries (bindings 3.4 HTTP-Redirect, 3.5 HTTP-POST) back into message XML,
// with every size bounded before the work that size would cost.

/** The largest message XML accepted, after base64 and inflate: an AuthnRequest is 1-4 KiB. */
const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * The largest RelayState accepted. Bindings 3.4.3 and 3.5.3 say it MUST NOT exceed 80 bytes, but
 * SPs in use (Shibboleth's `ss:mem:` keys are short, others put a whole return URL in it) exceed
 * that, so the limit kept is what a URL comfortably carries back.
 */
const MAX_RELAY_STATE_BYTES = 1024;

/** A query large enough to carry the largest message, its percent-encoded signature and RelayState. */
const MAX_QUERY_CHARS = 4 * MAX_MESSAGE_BYTES;

export interface RedirectMessage {
  xml: string;
  relayState?: string;
  /** Present when the query carried SigAlg and Signature; `signedOctets` are what they sign, as they appeared. */
  signature?: { sigAlg: string; signature: Buffer; signedOctets: string };
}

/**
 * Reads a message sent over the HTTP-Redirect binding from the raw (still URL-encoded) query string.
 * The signature is over the parameters exactly as the sender encoded them (bindings 3.4.4.1:
 * `SAMLRequest=..&RelayState=..&SigAlg=..` in that order, RelayState only when present), so
 * `signedOctets` is rebuilt from the raw query and never from decoded and re-encoded values.
 */
export function decodeRedirect(rawQuery: string, param: 'SAMLRequest' | 'SAMLResponse'): RedirectMessage {
  const query = rawQuery.startsWith('?') ? rawQuery.slice(1) : rawQuery;
  if (query.length > MAX_QUERY_CHARS) throw new SamlError('too_large', `query longer than ${MAX_QUERY_CHARS} characters`);
  const raw = rawParameters(query, [param, 'RelayState', 'SigAlg', 'Signature', 'SAMLEncoding']);

  const encoded = raw.get(param);
  if (encoded === undefined || encoded === '') throw new SamlError('malformed', `the query has no ${param}`);
  const encoding = raw.get('SAMLEncoding');
  if (encoding !== undefined && decodeComponent(encoding, 'SAMLEncoding', false) !== URL_ENCODING_DEFLATE) {
    throw new SamlError('unsupported', `SAMLEncoding ${decodeComponent(encoding, 'SAMLEncoding', false)}: only DEFLATE is defined`);
  }
  const message: RedirectMessage = { xml: utf8(inflate(base64(decodeComponent(encoded, param, false), param))) };

  const relayState = raw.get('RelayState');
  if (relayState !== undefined) message.relayState = readRelayState(decodeComponent(relayState, 'RelayState', true));

  const sigAlg = raw.get('SigAlg');
  const signature = raw.get('Signature');
  if ((sigAlg === undefined) !== (signature === undefined)) throw new SamlError('malformed', 'the query has one of SigAlg and Signature without the other');
  if (sigAlg !== undefined && signature !== undefined) {
    const signedOctets = [`${param}=${encoded}`, ...(relayState === undefined ? [] : [`RelayState=${relayState}`]), `SigAlg=${sigAlg}`].join('&');
    message.signature = { sigAlg: decodeComponent(sigAlg, 'SigAlg', false), signature: base64(decodeComponent(signature, 'Signature', false), 'Signature'), signedOctets };
  }
  return message;
}

/** Reads the base64 SAMLRequest or SAMLResponse form field of the HTTP-POST binding. */
export function decodePost(value: string): string {
  return utf8(base64(value, 'the POST message'));
}

/** A RelayState as received (either binding): absent or empty is no RelayState; longer than 1024 bytes is `too_large`. */
export function readRelayState(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  if (Buffer.byteLength(value, 'utf8') > MAX_RELAY_STATE_BYTES) throw new SamlError('too_large', `RelayState longer than ${MAX_RELAY_STATE_BYTES} bytes`);
  return value;
}

/** The still-encoded values of the named parameters; any of them twice is `malformed` (which one would be signed?). */
function rawParameters(query: string, names: string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (const pair of query.split('&')) {
    const separator = pair.indexOf('=');
    const name = decodeComponent(separator === -1 ? pair : pair.slice(0, separator), 'a parameter name', true);
    if (!names.includes(name)) continue;
    if (values.has(name)) throw new SamlError('malformed', `the query has ${name} twice`);
    values.set(name, separator === -1 ? '' : pair.slice(separator + 1));
  }
  return values;
}

/**
 * Percent-decodes one query value. `+` means a space in form encoding, which is right for RelayState;
 * in base64 values it can only be a `+` that the sender left unencoded, so it is kept there.
 */
function decodeComponent(value: string, what: string, plusIsSpace: boolean): string {
  try {
    return decodeURIComponent(plusIsSpace ? value.replaceAll('+', ' ') : value);
  } catch {
    throw new SamlError('malformed', `${what} is not correctly URL-encoded`);
  }
}

/** Strict base64 (line breaks allowed, as some SPs wrap the POST field), bounded to MAX_MESSAGE_BYTES of output. */
function base64(value: string, what: string): Buffer {
  // Base64 is 4/3 of the bytes; twice the bytes leaves room for line breaks and stops the regular
  // expression below from running over a huge value.
  if (value.length > 2 * MAX_MESSAGE_BYTES) throw new SamlError('too_large', `${what} larger than ${MAX_MESSAGE_BYTES} bytes`);
  const compact = value.replace(/[ \t\r\n]/g, '');
  if (compact === '' || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new SamlError('malformed', `${what} is not base64`);
  const bytes = Buffer.from(compact, 'base64');
  if (bytes.length > MAX_MESSAGE_BYTES) throw new SamlError('too_large', `${what} larger than ${MAX_MESSAGE_BYTES} bytes`);
  return bytes;
}

/** Raw inflate stopped at MAX_MESSAGE_BYTES of output, so a deflate bomb costs at most that much. */
function inflate(bytes: Buffer): Buffer {
  try {
    return inflateRawSync(bytes, { maxOutputLength: MAX_MESSAGE_BYTES });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new SamlError('too_large', `the message inflates to more than ${MAX_MESSAGE_BYTES} bytes`);
    throw new SamlError('malformed', 'the message is not raw DEFLATE data');
  }
}

/** The message bytes as UTF-8, refusing invalid sequences (a Latin-1 or UTF-16 message) instead of replacing them. */
function utf8(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new SamlError('malformed', 'the message is not UTF-8');
  }
}

// ---- Signatures: verifying inbound messages against the certificates registered for the SP:
// query signatures of the HTTP-Redirect binding with node:crypto, XML signatures with xml-crypto.
// The key always comes from the registration, never from a KeyInfo in the message.

interface AcceptedAlgorithm {
  hash: 'sha256' | 'sha384' | 'sha512';
  /** The key type the algorithm names: a key of another type must not verify (node:crypto picks the scheme from the key). */
  keyType: 'rsa' | 'ec';
}

/** Signature algorithms accepted on inbound messages (RSA PKCS#1 v1.5 and ECDSA); SHA-1 ones are refused by absence. */
const SIGNATURE_ALGORITHMS: Record<string, AcceptedAlgorithm> = {
  [ALG.rsaSha256]: { hash: 'sha256', keyType: 'rsa' },
  [ALG.rsaSha384]: { hash: 'sha384', keyType: 'rsa' },
  [ALG.rsaSha512]: { hash: 'sha512', keyType: 'rsa' },
  [ALG.ecdsaSha256]: { hash: 'sha256', keyType: 'ec' },
};

/** Digest algorithms accepted in XML signature references. */
const DIGEST_ALGORITHMS: Record<string, 'sha256' | 'sha384' | 'sha512'> = { [ALG.sha256]: 'sha256', [ALG.sha384]: 'sha384', [ALG.sha512]: 'sha512' };

/**
 * Reference transforms accepted (SAML core 5.4.4: enveloped signature and exclusive c14n; xml-crypto
 * appends inclusive c14n after a last enveloped transform). The #WithComments variants are refused:
 * they would make comments part of the signed value while every reader here skips them.
 */
const TRANSFORMS = new Set<string>([ALG.envelopedSignature, ALG.excC14n, ALG.c14n]);

/**
 * Verifies the query signature of an HTTP-Redirect message (bindings 3.4.4.1) against the SP's
 * registered certificates: `unsigned` without one, `bad_signature` for an algorithm not accepted
 * (SHA-1 among them) or when no certificate verifies it.
 */
export function verifyRedirectSignature(message: Pick<RedirectMessage, 'signature'>, certificatesPem: string[]): void {
  if (!message.signature) throw new SamlError('unsigned', 'the message has no signature');
  const { sigAlg, signature, signedOctets } = message.signature;
  const algorithm = acceptedAlgorithm(sigAlg);
  const octets = Buffer.from(signedOctets, 'utf8');
  // ECDSA query signatures come as r||s from XML-security libraries (the form XML signatures use)
  // and as DER from generic ones; both encode the same (r, s), so trying both accepts no forgery.
  if (registeredKeys(certificatesPem).some(({ key }) => verifies(algorithm, octets, key, signature, ['ieee-p1363', 'der']))) return;
  throw new SamlError('bad_signature', 'the query signature does not verify with any registered certificate');
}

/**
 * Verifies the XML signature of a message received over the HTTP-POST binding. Only the whole
 * message may be signed: exactly one ds:Signature in the document, a direct child of the root, with
 * one Reference to `#` + the root's ID (enveloped). Guards against signature wrapping: IDs must be
 * unique, and after xml-crypto verifies, what it reports as signed (getSignedReferences()) must be
 * the canonical form of this very root element, so every value read from `document` (comments
 * aside, which the readers skip) is one the signature covers. `unsigned` without a signature,
 * `bad_signature` otherwise.
 */
export function verifyEmbeddedSignature(document: Document, certificatesPem: string[]): void {
  const root = document.documentElement;
  if (!root) throw new SamlError('malformed', 'empty document');
  const signatures = elementsNamed(document, NS.dsig, 'Signature');
  if (signatures.length === 0) throw new SamlError('unsigned', 'the message has no signature');
  if (signatures.length > 1) throw new SamlError('bad_signature', `the message has ${signatures.length} signatures: only one, of the whole message, is accepted`);
  const [signature] = signatures;
  if (signature.parentNode !== root) throw new SamlError('bad_signature', 'the signature is not a child of the message element: it does not sign the message');
  const rootId = attribute(root, 'ID');
  if (rootId === null || !isXmlId(rootId)) throw new SamlError('bad_signature', 'the signed message has no valid ID');
  checkUniqueIds(root);

  const xml = new (xmldom().XMLSerializer)().serializeToString(document);
  let failure = 'no certificate is registered';
  for (const { pem, key } of registeredKeys(certificatesPem)) {
    // getCertFromKeyInfo answers with the registered certificate whatever KeyInfo says: the message's
    // KeyInfo is never read, so a certificate an attacker embeds is never used.
    const verifier = new (xmlCrypto().SignedXml)({ getCertFromKeyInfo: () => pem });
    verifier.SignatureAlgorithms = xmlSignatureAlgorithms(key.asymmetricKeyType);
    verifier.HashAlgorithms = XML_DIGEST_ALGORITHMS;
    let valid: boolean;
    try {
      verifier.loadSignature(signature);
      valid = verifier.checkSignature(xml);
    } catch (error) {
      failure = (error as Error).message;
      continue;
    }
    if (!valid) {
      failure = 'a reference digest does not match: the signed content was changed';
      continue;
    }
    checkSignedRoot(verifier, root, rootId);
    return;
  }
  throw new SamlError('bad_signature', `the signature does not verify with any registered certificate (${failure})`);
}

/** After a successful check: the one thing signed is this root, in exactly the form the readers see. */
function checkSignedRoot(verifier: SignedXml, root: Element, rootId: string): void {
  const references = verifier.getReferences();
  const signed = verifier.getSignedReferences();
  if (references.length !== 1 || signed.length !== 1) throw new SamlError('bad_signature', `the signature has ${references.length} references: only one, to the whole message, is accepted`);
  const [reference] = references;
  if (reference.uri !== `#${rootId}`) throw new SamlError('bad_signature', `the signature references ${reference.uri || 'the whole document'}, not the message #${rootId}`);
  const refused = reference.transforms.find((transform) => !TRANSFORMS.has(transform));
  if (refused !== undefined || !reference.transforms.includes(ALG.envelopedSignature)) {
    throw new SamlError('bad_signature', `the signature's transforms are not enveloped signature and exclusive c14n${refused ? ` (${refused})` : ''}`);
  }
  // The same transforms over our own tree: equal output means the element xml-crypto resolved in its
  // own parse is this root, with nothing added, moved or read differently by the two parsers.
  const ours = verifier.getCanonXml(reference.transforms, root, { inclusiveNamespacesPrefixList: reference.inclusiveNamespacesPrefixList, ancestorNamespaces: [] });
  if (ours !== signed[0]) throw new SamlError('bad_signature', 'the signed content is not the message as read');
}

/** An ID value twice lets a reference resolve to another element than the one read (xml-crypto looks at ID, Id and id). */
function checkUniqueIds(root: Element): void {
  const seen = new Set<string>();
  for (const element of [root, ...Array.from(root.getElementsByTagName('*'))]) {
    for (const { localName, value } of Array.from(element.attributes)) {
      if (localName !== 'ID' && localName !== 'Id' && localName !== 'id') continue;
      if (seen.has(value)) throw new SamlError('bad_signature', `the ID ${value} appears twice in the message`);
      seen.add(value);
    }
  }
}

function acceptedAlgorithm(uri: string): AcceptedAlgorithm {
  const algorithm = SIGNATURE_ALGORITHMS[uri];
  if (!algorithm) throw new SamlError('bad_signature', `signature algorithm ${uri} is not accepted${/sha1$/i.test(uri) ? ' (SHA-1 is refused)' : ''}`);
  return algorithm;
}

/** The registered certificates with their keys; one that does not load (a registration bug) verifies nothing rather than failing the request. */
function registeredKeys(certificatesPem: string[]): Array<{ pem: string; key: KeyObject }> {
  return certificatesPem.flatMap((pem) => {
    try {
      return [{ pem, key: createPublicKey(pem) }];
    } catch {
      return [];
    }
  });
}

function verifies(algorithm: AcceptedAlgorithm, data: Buffer, key: KeyObject, signature: Buffer, ecdsaEncodings: Array<'ieee-p1363' | 'der'>): boolean {
  if (key.asymmetricKeyType !== algorithm.keyType) return false;
  if (algorithm.keyType === 'rsa') return verify(algorithm.hash, data, key, signature);
  return ecdsaEncodings.some((dsaEncoding) => verify(algorithm.hash, data, { key, dsaEncoding }, signature));
}

/**
 * xml-crypto's signature algorithm table for a key type: only the accepted algorithms of that type
 * (XML signatures carry ECDSA as r||s, XMLDSig 1.1 section 6.4.3).
 */
function xmlSignatureAlgorithms(keyType: string | undefined): Record<string, new () => SignatureAlgorithm> {
  const table: Record<string, new () => SignatureAlgorithm> = {};
  for (const [uri, algorithm] of Object.entries(SIGNATURE_ALGORITHMS)) {
    if (algorithm.keyType !== keyType) continue;
    table[uri] = class {
      getAlgorithmName = () => uri;
      getSignature = (): never => {
        throw new Error('inbound algorithms only verify');
      };
      // `certificate` is what getCertFromKeyInfo returned: the registered certificate.
      verifySignature = (material: string, certificate: string, signatureValue: string) =>
        verifies(algorithm, Buffer.from(material, 'utf8'), createPublicKey(certificate), Buffer.from(signatureValue, 'base64'), ['ieee-p1363']);
    } as unknown as new () => SignatureAlgorithm;
  }
  return table;
}

const XML_DIGEST_ALGORITHMS: Record<string, new () => HashAlgorithm> = Object.fromEntries(
  Object.entries(DIGEST_ALGORITHMS).map(([uri, hash]) => [
    uri,
    class {
      getAlgorithmName = () => uri;
      getHash = (xml: string) => createHash(hash).update(xml, 'utf8').digest('base64');
    },
  ]),
);
