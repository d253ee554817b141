import { decodeJwt } from 'jose';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { RetryLaterError } from '../shared/errors.ts';

/** The provider's key set of a client (oidc-provider's own, not in its types): refresh() fetches the jwks_uri unless the keys are fresh. */
type WithKeyStore = { asymmetricKeyStore: { refresh(): Promise<void> } };

/**
 * Brings the keys of a private_key_jwt client with a jwks_uri up to date before its token request's
 * unit of work begins (provider-gate.ts). The provider would fetch them inside it, holding a
 * transaction (on PGlite the only connection) over an outgoing request that may take 2.5 s. Keys
 * still fresh are not fetched. A fetch that failed here fails at once inside (a target that did
 * not answer in full: outbound-fetch.ts; an HTTP error: the provider keeps it), where the provider answers
 * it as for any key that does not verify: invalid_client.
 */
export async function refreshClientKeys(provider: Provider, ctx: Context): Promise<void> {
  const body = ctx.request.body as Record<string, unknown> | undefined;
  const assertion = body?.client_assertion;
  if (typeof assertion !== 'string') return;
  try {
    // As the provider finds the client: by client_id, or else by the assertion's subject.
    const clientId = typeof body?.client_id === 'string' ? body.client_id : decodeJwt(assertion).sub;
    const client = clientId ? await provider.Client.find(clientId) : undefined;
    if (client?.clientAuthMethod === 'private_key_jwt' && client.jwksUri) await (client as unknown as WithKeyStore).asymmetricKeyStore.refresh();
  } catch (error) {
    // A database away answers 503 now; anything else the provider meets again and answers.
    if (error instanceof RetryLaterError) throw error;
  }
}
