import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { Database } from '../db/database.ts';
import { withHeldWrites } from '../db/one-statement.ts';
import type { Renderer } from '../http/renderer.ts';
import { errorAnswer, setRetryAfter, TEMPORARILY_UNAVAILABLE } from '../http/error-map.ts';
import { RetryLaterError } from '../shared/errors.ts';
import { refreshClientKeys } from './client-keys.ts';
import { consumesPresented, servingTokenRequest } from './token-retry.ts';

/**
 * A token request consumes a code, device code or refresh token and writes what replaces it: both
 * stand or fall together, so a fault between them leaves the old one usable by the client's retry.
 */
// The provider's router also answers other letter cases and a trailing slash. Only the grants that
// consume something need the unit: a password grant would hold its throttle row's lock over a hash.
const isTokenRequest = (ctx: Context) => ctx.method === 'POST' && /^\/token\/?$/i.test(ctx.path);
const consumesSomething = (ctx: Context) => consumesPresented((ctx.request.body as Record<string, unknown> | undefined)?.grant_type);
/**
 * The resume after an interaction, where the sign-in's session, grant and code are saved: the
 * authorization's (GET /auth/:uid) or the device flow's (GET /device/:uid, its device code approved).
 */
const isResume = (ctx: Context) => ctx.method === 'GET' && /^\/(?:auth|device)\/[^/]+\/?$/i.test(ctx.path);
/** The confirmed sign-out: the session ends, and so do its SAML sessions (saml/slo.ts afterSignOut, inside the gate). */
const isSignOut = (ctx: Context) => ctx.method === 'POST' && /^\/session\/end\/confirm\/?$/i.test(ctx.path);
/** Requests whose writes stand or fall together, and whose failed answer leaves the browser as it was (unsaved). */
const allOrNothing = (ctx: Context) => isResume(ctx) || isSignOut(ctx);

/**
 * What a failed request would have saved was not (or not all of it): neither its redirect (a code
 * for the relying party) nor its cookies (a new session's, or the interaction's, cleared) may go
 * out, so that the browser, as it was, can try again.
 */
function unsaved(ctx: Context): void {
  ctx.remove('Location');
  ctx.remove('Set-Cookie');
}

/** Where the provider's `server_error` event leaves the error it caught (see app.ts). */
export const PROVIDER_ERROR = 'providerError';

/**
 * Wraps the protocol front end: token requests run as one unit of work, and a request the
 * provider could not serve because the database (or the hashing queue) was unavailable answers 503
 * (429 when its address is over the cap of anonymous records: throttle/anonymous-cap.ts)
 * with Retry-After instead of the provider's 500 server_error: RFC 6749 JSON
 * `temporarily_unavailable` on the JSON endpoints, the ja/en page where a person is looking.
 */
export function providerGate(database: Database, renderer: Renderer, provider: () => Provider) {
  return async (ctx: Context, next: Next) => {
    // Not served: an error page, or the busy page (a 429 for an address over its cap included).
    const served = () => ctx.status < 500 && !(ctx.state[PROVIDER_ERROR] instanceof RetryLaterError);
    try {
      // Its arrival is taken before it waits for a connection: a retry of a lost answer must come after it (token-retry.ts).
      if (isTokenRequest(ctx) && consumesSomething(ctx)) {
        await servingTokenRequest(ctx, async () => {
          // A client's keys at its jwks_uri are fetched before the unit: no transaction waits on another server.
          await refreshClientKeys(provider(), ctx);
          await database.unitOfWork(next, served);
        });
      }
      // A resume uses up its interaction and saves the session, its grant and the code (or the
      // approved device code): all of it or none, so that after a fault the browser's retry (a
      // reload) finishes the sign-in. The saves go out in one statement as it answers (adapter.ts
      // holds them). A sign-out ends the session and its SAML sessions together: after a fault the
      // session (and its cookie) is still there, and the retry signs out and goes round the SPs.
      else if (allOrNothing(ctx)) await database.unitOfWork(() => withHeldWrites(database.db, next, served), served);
      else await next();
    } catch (error) {
      if (!(error instanceof RetryLaterError)) {
        if (allOrNothing(ctx)) unsaved(ctx);
        throw error;
      }
      ctx.state[PROVIDER_ERROR] = error;
      ctx.body = undefined;
    }
    const error = ctx.state[PROVIDER_ERROR];
    // A resume or sign-out not served, however (the provider's own error page included), was rolled back.
    if (error instanceof RetryLaterError || (allOrNothing(ctx) && !served())) unsaved(ctx);
    if (!(error instanceof RetryLaterError)) return;
    // 503 for an outage or overload, 429 for an address over its cap of anonymous records (error map).
    const { status } = errorAnswer(error);
    ctx.state.log.warn({ errorCode: error.code, cause: (error.cause as Error | undefined)?.message, path: ctx.path }, `protocol request answered ${status}`);
    if (ctx.response.is('html') || (!ctx.body && ctx.accepts('json', 'html') === 'html' && !isTokenRequest(ctx))) {
      renderer.retryLater(ctx, error);
      return;
    }
    ctx.status = status;
    setRetryAfter(ctx, error);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ...TEMPORARILY_UNAVAILABLE };
  };
}
