import type { Document } from '@xmldom/xmldom';
import type { ClientRow, ClientStore } from '../client/client.store.ts';
import type { ClientValues } from '../client/client-settings.ts';
import { DomainError } from '../shared/errors.ts';
import { NS } from './constants.ts';
import { type RedirectMessage, verifyEmbeddedSignature, verifyRedirectSignature } from './xml.ts';

/** A registered SAML service provider: its client row and its SAML settings. */
export interface ServiceProvider {
  row: ClientRow;
  entityId: string;
  values: Pick<ClientValues, 'spMetadata' | 'nameIdFormat' | 'signed' | 'encryptAssertions' | 'attributes' | 'attributeNames' | 'signedRequests' | 'idpInitiated' | 'name' | 'nameJa'>;
}

export const samlRefusal = (message: string) => new DomainError('saml_refused', message);

/** The SAML service provider registered with this entityID, if there is one. */
export async function findServiceProvider(clients: ClientStore, entityId: string): Promise<ServiceProvider | undefined> {
  if (!entityId || entityId.length > 200) return undefined;
  const row = await clients.find(entityId);
  if (row?.protocol !== 'saml' || !row.saml) return undefined;
  return { row, entityId: row.client_id, values: { ...(row.saml as unknown as ServiceProvider['values']), name: row.name, nameJa: row.name_ja } };
}

/**
 * Checks the signature of a message from this SP, by either binding: required when the SP is
 * registered for signed requests (or says so in its metadata), and checked whenever one is present
 * anywhere in the message, so that a message cannot pass by dropping a bad signature or keep one
 * that does not verify. Answers whether the message was signed (and verified).
 */
export function checkSignature(
  sp: ServiceProvider,
  message: { redirect?: RedirectMessage; document: Document },
  required = sp.values.signedRequests || sp.values.spMetadata!.authnRequestsSigned,
): boolean {
  const certificates = sp.values.spMetadata!.signingCertificates;
  const signed = message.redirect ? message.redirect.signature !== undefined : message.document.getElementsByTagNameNS(NS.dsig, 'Signature').length > 0;
  if (!signed && !required) return false;
  if (message.redirect) verifyRedirectSignature(message.redirect, certificates);
  else verifyEmbeddedSignature(message.document, certificates);
  return true;
}

/**
 * Where a message from an SP says it is going: a signed one must say (bindings 3.4.5.2, 3.5.5.2),
 * else it could be replayed at another IdP that trusts the same key; any message addressed to
 * another endpoint than `endpoint` (the one it arrived at) is refused.
 */
export function checkDestination(destination: string | null, endpoint: string, signed: boolean): void {
  if (signed && destination === null) throw samlRefusal(`a signed message to ${endpoint} without Destination`);
  if (destination !== null && destination !== endpoint) throw samlRefusal(`the message is addressed to ${destination}, not ${endpoint}`);
}
