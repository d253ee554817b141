import { NS } from './constants.ts';
import { addSeconds, append, appendNameId, appendStatus, newProtocolMessage, samlInstant, serialize, type SamlNameId } from './xml-build.ts';

export interface LogoutRequestInput {
  /** The IdP entityID. */
  issuer: string;
  /** The SP's SingleLogoutService location. */
  destination: string;
  nameId: SamlNameId;
  sessionIndex: string;
  now: Date;
  notOnOrAfterSeconds: number;
}

export interface LogoutResponseInput {
  issuer: string;
  /** The SP's SingleLogoutService ResponseLocation (or Location). */
  destination: string;
  /** The ID of the SP's LogoutRequest. */
  inResponseTo: string;
  statusTop: string;
  now: Date;
}

/**
 * The LogoutRequest Akamon sends an SP when a session it holds there ends (core 3.7.1): the NameID
 * and SessionIndex the SP was given in the assertion. Unsigned XML: the binding signs it (the
 * redirect binding's query signature, or signRoot for HTTP-POST). The ID is returned so the
 * LogoutResponse can be matched to it.
 */
export function buildLogoutRequest(input: LogoutRequestInput): { id: string; xml: string } {
  const { doc, root, id } = newProtocolMessage('samlp:LogoutRequest', input, { NotOnOrAfter: samlInstant(addSeconds(input.now, input.notOnOrAfterSeconds)) });
  appendNameId(root, input.nameId);
  append(root, NS.protocol, 'samlp:SessionIndex', {}, input.sessionIndex);
  return { id, xml: serialize(doc) };
}

/** The answer to an SP's LogoutRequest (core 3.7.2), unsigned like buildLogoutRequest's. */
export function buildLogoutResponse(input: LogoutResponseInput): string {
  const { doc, root } = newProtocolMessage('samlp:LogoutResponse', input);
  appendStatus(root, { top: input.statusTop });
  return serialize(doc);
}
