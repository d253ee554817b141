import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { randomToken } from '../crypto/tokens.ts';
import { formBody } from '../http/form-body.ts';
import { BINDING, STATUS } from './constants.ts';
import { buildLogoutRequest, buildLogoutResponse } from './logout-build.ts';
import { readLogoutRequest, readLogoutResponse } from './logout-message.ts';
import { redirectUrl } from './redirect-binding.ts';
import { SamlError } from './saml-error.ts';
import type { SamlSession } from './saml-session.store.ts';
import { checkDestination, checkSignature, findServiceProvider, samlRefusal, type ServiceProvider } from './service-provider.ts';
import { signRoot } from './sign.ts';
import { postToSp } from './post-binding.ts';
import type { SamlDeps } from './sso.ts';
import { decodePost, decodeRedirect, readRelayState, type RedirectMessage } from './xml.ts';

/** How long a logout may take to go round the SPs, and how long a LogoutRequest of ours is valid. */
const JOURNEY_SECONDS = 600;
const MESSAGE_SECONDS = 300;
const CLOCK_SKEW_SECONDS = 300;

/** Where a logout started and which SPs it still has to visit (kept server-side, keyed by the RelayState it sends). */
interface LogoutJourney {
  /** The SP whose LogoutRequest started it, to be answered at the end; none when Akamon started it. */
  initiator: { clientId: string; requestId: string; relayState: string | null } | null;
  /** Where a sign-out at Akamon was going before the SPs were visited (its post-logout redirect). */
  afterwards: string | null;
  remaining: SamlSession[];
  /** The LogoutRequest sent and not yet answered. */
  waiting: { clientId: string; requestId: string } | null;
}

const journeyKey = (id: string) => `saml-logout:${id}`;

/** Where the provider's end_session leaves the uid of the session it ended (see app.ts). */
export const ENDED_SESSION = 'endedSignInSession';

/**
 * SAML Single Logout (profiles 4.4), front-channel. An SP's LogoutRequest ends the Akamon sign-in
 * session it names (the relying parties with back-channel logout are told, as at sign-out), then
 * the browser visits each other SP that got an assertion in that session and registered a logout
 * endpoint, with a signed LogoutRequest, and comes back with its LogoutResponse; the initiating SP
 * gets its LogoutResponse last. An SP that does not answer leaves the browser with it: the rest
 * of the logout has already happened at Akamon, only the other SPs' own sessions remain.
 */
export function samlLogout(deps: SamlDeps, sloUrl: string, idpEntityId: string) {
  /**
   * After a sign-out at Akamon (the provider's end_session, which the account home uses too): the
   * SAML SPs that got an assertion in the ended session are visited before the browser goes where
   * the sign-out was sending it. The provider marks the ended session's uid (app.ts).
   */
  const afterSignOut: Middleware = async (ctx, next) => {
    await next();
    const uid = ctx.state[ENDED_SESSION] as string | undefined;
    const afterwards = ctx.response.get('Location');
    if (!uid || ctx.status !== 303 || !afterwards) return;
    const ended = await deps.sessions.end({ sessionUid: uid });
    if (!ended.length) return;
    ctx.state.log.info({ sessions: ended.length }, 'SAML logout after sign-out');
    await carryOn(ctx, randomToken(), { initiator: null, afterwards, remaining: ended, waiting: null });
  };

  return { routes: (router: Router) => routes(router), afterSignOut };

  function routes(router: Router) {
    router.get('/saml/slo', async (ctx) => {
      const param = 'SAMLRequest' in ctx.query ? 'SAMLRequest' : 'SAMLResponse';
      const message = decodeRedirect(ctx.querystring, param);
      await receive(ctx, param, message.xml, message.relayState ?? null, message);
    });

    router.post('/saml/slo', formBody, async (ctx) => {
      const body = ctx.request.body as Record<string, string>;
      const param = body.SAMLRequest ? 'SAMLRequest' : 'SAMLResponse';
      if (!body[param]) throw new SamlError('malformed', 'no SAMLRequest or SAMLResponse in the form');
      await receive(ctx, param, decodePost(body[param]), readRelayState(body.RelayState) ?? null, undefined);
    });
  }

  async function receive(ctx: Context, param: 'SAMLRequest' | 'SAMLResponse', xml: string, relayState: string | null, redirect: RedirectMessage | undefined) {
    if (param === 'SAMLRequest') return logoutRequested(ctx, xml, relayState, redirect);
    const response = readLogoutResponse(xml);
    const sp = await knownSp(response.issuer);
    checkSignature(sp, { redirect, document: response.document }, sp.values.spMetadata!.signingCertificates.length > 0);
    const id = relayState ?? '';
    const journey = id.length <= 100 ? ((await deps.state.get(journeyKey(id))) as Partial<LogoutJourney>) : {};
    if (!journey.waiting || journey.waiting.clientId !== sp.entityId || journey.waiting.requestId !== response.inResponseTo) {
      throw samlRefusal(`a LogoutResponse from ${sp.entityId} that no logout in progress is waiting for`);
    }
    if (response.statusCode !== STATUS.success) ctx.state.log.info({ sp: sp.entityId, status: response.statusCode }, 'SAML logout: the SP did not confirm');
    await carryOn(ctx, id, { ...(journey as LogoutJourney), waiting: null });
  }

  async function logoutRequested(ctx: Context, xml: string, relayState: string | null, redirect: RedirectMessage | undefined) {
    const request = readLogoutRequest(xml);
    const sp = await knownSp(request.issuer);
    // Signed whenever the SP has a key; an SP without one names a live SessionIndex of its own
    // (random, given only to it), which is checked below: its NameID alone is no proof.
    const keyed = sp.values.spMetadata!.signingCertificates.length > 0;
    checkDestination(request.destination, sloUrl, checkSignature(sp, { redirect, document: request.document }, keyed));
    const now = Date.now();
    if (Math.abs(now - request.issueInstant.getTime()) > CLOCK_SKEW_SECONDS * 1000 || (request.notOnOrAfter && request.notOnOrAfter.getTime() < now)) {
      throw samlRefusal('the LogoutRequest is stale');
    }
    if (!keyed && request.sessionIndexes.length === 0) throw samlRefusal(`an unsigned LogoutRequest from ${sp.entityId} names no SessionIndex`);
    // Without a SessionIndex the request is about every session of the person at this SP (core 3.7.3.2).
    const sessions = await deps.sessions.named(sp.entityId, request.sessionIndexes.length ? { ids: request.sessionIndexes } : { nameId: request.nameId.value });
    const named = sessions.filter((s) => s.nameId.value === request.nameId.value);
    if (!keyed && named.length === 0) throw samlRefusal(`an unsigned LogoutRequest from ${sp.entityId} names no session of its own`);
    // The sign-in sessions end with their SAML sessions and the journey's first step, or none of
    // it does: after a fault the SP's retry finds them all still there and goes round the other SPs.
    // The relying parties are told once it has committed (endSession: afterUnitCommits).
    await deps.unitOfWork(async () => {
      const remaining: SamlSession[] = [];
      for (const uid of new Set(named.map((s) => s.sessionUid))) {
        await deps.endSession(uid);
        remaining.push(...(await deps.sessions.end({ sessionUid: uid })).filter((s) => s.clientId !== sp.entityId));
      }
      ctx.state.log.info({ sp: sp.entityId, sessions: named.length, others: remaining.length }, 'SAML logout requested');
      await carryOn(ctx, randomToken(), { initiator: { clientId: sp.entityId, requestId: request.id, relayState }, afterwards: null, remaining, waiting: null });
    });
  }

  async function knownSp(entityId: string): Promise<ServiceProvider> {
    const sp = await findServiceProvider(deps.clients, entityId);
    if (!sp) throw samlRefusal(`unknown service provider ${entityId}`);
    return sp;
  }

  /** The next SP to tell, or the end: the initiator's LogoutResponse, or Akamon's signed-out page. */
  async function carryOn(ctx: Context, id: string, journey: LogoutJourney) {
    const key = await deps.keys.signing();
    while (journey.remaining.length) {
      const session = journey.remaining.shift()!;
      const sp = await findServiceProvider(deps.clients, session.clientId);
      const endpoint = sp && logoutEndpoint(sp);
      if (!sp || !endpoint) continue;
      const { id: requestId, xml } = buildLogoutRequest({
        issuer: idpEntityId,
        destination: endpoint.location,
        nameId: session.nameId,
        sessionIndex: session.id,
        now: new Date(),
        notOnOrAfterSeconds: MESSAGE_SECONDS,
      });
      await deps.state.merge(journeyKey(id), { ...journey, waiting: { clientId: sp.entityId, requestId } }, JOURNEY_SECONDS);
      return send(ctx, sp, endpoint.binding, endpoint.location, 'SAMLRequest', xml, id, key);
    }
    await deps.state.merge(journeyKey(id), { ...journey, waiting: null }, 1);
    const initiator = journey.initiator && (await findServiceProvider(deps.clients, journey.initiator.clientId));
    const endpoint = initiator && logoutEndpoint(initiator);
    if (!initiator || !endpoint || !journey.initiator) return journey.afterwards ? ctx.redirect(journey.afterwards) : deps.renderer.page(ctx, 'logged-out', 'logout.done_title');
    const destination = endpoint.responseLocation ?? endpoint.location;
    const xml = buildLogoutResponse({ issuer: idpEntityId, destination, inResponseTo: journey.initiator.requestId, statusTop: STATUS.success, now: new Date() });
    return send(ctx, initiator, endpoint.binding, destination, 'SAMLResponse', xml, journey.initiator.relayState, key);
  }

  function send(
    ctx: Context,
    sp: ServiceProvider,
    binding: string,
    location: string,
    param: 'SAMLRequest' | 'SAMLResponse',
    xml: string,
    relayState: string | null,
    key: Awaited<ReturnType<SamlDeps['keys']['signing']>>,
  ) {
    ctx.set('Cache-Control', 'no-store');
    if (binding === BINDING.redirect) return ctx.redirect(redirectUrl(location, param, xml, relayState, key));
    postToSp(ctx, deps.renderer, { action: location, service: sp.values, param, xml: signRoot(xml, key), relayState });
  }
}

/** The SP's logout endpoint: HTTP-Redirect preferred (no page in between), else HTTP-POST. */
function logoutEndpoint(sp: ServiceProvider) {
  const slo = sp.values.spMetadata!.slo;
  return slo.find((s) => s.binding === BINDING.redirect) ?? slo.find((s) => s.binding === BINDING.post);
}
