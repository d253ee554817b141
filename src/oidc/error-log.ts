import type Provider from 'oidc-provider';
import { DeliveryDeferred } from '../shared/errors.ts';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';

/**
 * The provider's events for a request it refused, one per endpoint Akamon has enabled (provider.ts).
 * Each hands over the error it answered with, which knows why (error_detail) even where the answer
 * to the caller stays vague ("client authentication failed").
 */
const REFUSAL_EVENTS = [
  'authorization.error',
  'grant.error',
  'introspection.error',
  'revocation.error',
  'userinfo.error',
  'end_session.error',
  'end_session_confirm.error',
  'end_session_success.error',
  'pushed_authorization_request.error',
  'discovery.error',
  'jwks.error',
] as const;

/**
 * Answers that are the protocol working as meant (prompt=none finding no session, a person
 * leaving the sign-in or denied by an access rule), not a relying party doing something wrong.
 */
const ORDINARY_ANSWERS = new Set(['login_required', 'consent_required', 'interaction_required', 'account_selection_required', 'access_denied']);

interface ProviderError extends Error {
  error?: string;
  error_description?: string;
  error_detail?: string;
  statusCode?: number;
}

/** Values the caller chose (an unknown client id, a made-up grant type): kept short in the log. */
const clip = (value: unknown): string | undefined => (typeof value === 'string' ? value.slice(0, 128) : undefined);

/**
 * What an operator needs to tell a relying party why it was refused: the client, the grant type,
 * the error and the provider's reasons. Built from named fields only, so nothing the request carried
 * as a secret (client_secret, code, tokens, password, client_assertion) can reach the log. A client
 * id sent only in the Basic authorization header is not read back out of it: that header holds
 * the secret too.
 */
function refusalRecord(event: string, ctx: KoaContextWithOIDC, error: ProviderError) {
  const oidc = ctx.oidc as KoaContextWithOIDC['oidc'] | undefined;
  const params = oidc?.params as Record<string, unknown> | undefined;
  return {
    event,
    endpoint: oidc?.route,
    clientId: oidc?.client?.clientId ?? clip(params?.client_id),
    grantType: clip(params?.grant_type),
    error: error.error ?? error.name,
    description: error.error_description,
    detail: error.error_detail,
    status: error.statusCode,
  };
}

/**
 * The request's own logger (it carries the request id); the provider runs on the app's context.
 * Events emitted outside a request (back-channel deliveries of a revocation) have no context.
 */
export const requestLog = (ctx: KoaContextWithOIDC | undefined, fallback: Logger): Logger => (ctx as unknown as { state?: { log?: Logger } } | undefined)?.state?.log ?? fallback;

/** Logs every refused protocol request, with the request id of the request it refused. */
export function logRefusals(provider: Provider, logger: Logger): void {
  for (const event of REFUSAL_EVENTS) {
    // Every one of these events has the same listener type; the typings declare them one by one.
    provider.on(event as 'grant.error', (ctx: KoaContextWithOIDC, error: ProviderError) => {
      const record = refusalRecord(event, ctx, error);
      requestLog(ctx, logger)[ORDINARY_ANSWERS.has(String(record.error)) ? 'info' : 'warn'](record, 'protocol request refused');
    });
  }
  // Delivery to a relying party's back-channel logout URI failed (the person is signed out anyway).
  provider.on('backchannel.error', (ctx: KoaContextWithOIDC, error: Error, client: { clientId: string }) => {
    if (error instanceof DeliveryDeferred) return;
    requestLog(ctx, logger).warn({ err: { message: error.message }, clientId: client.clientId }, 'back-channel logout delivery failed');
  });
}
