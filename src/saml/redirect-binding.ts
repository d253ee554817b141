import { sign } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { ALG } from './constants.ts';

/**
 * The URL that sends a SAML message over the HTTP-Redirect binding (bindings 3.4.4): the XML
 * raw-deflated and base64-encoded in `param`, the RelayState the SP sent (left out when it sent none
 * or an empty one), and an RSA-SHA256 signature over the exact URL-encoded octets
 * `param=..&RelayState=..&SigAlg=..` (3.4.4.1), which is what the SP verifies against the raw query.
 */
export function redirectUrl(endpoint: string, param: 'SAMLRequest' | 'SAMLResponse', xml: string, relayState: string | null, key: { privatePem: string }): string {
  const parts = [`${param}=${encodeURIComponent(deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'))}`];
  if (relayState) parts.push(`RelayState=${encodeURIComponent(relayState)}`);
  parts.push(`SigAlg=${encodeURIComponent(ALG.rsaSha256)}`);
  const signedOctets = parts.join('&');
  const signature = sign('sha256', Buffer.from(signedOctets, 'utf8'), key.privatePem).toString('base64');
  // An endpoint may carry its own query (a registered `...?op=slo`): the message joins it.
  return `${endpoint}${endpoint.includes('?') ? '&' : '?'}${signedOctets}&Signature=${encodeURIComponent(signature)}`;
}
