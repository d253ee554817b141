import type { KeyObject } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { AccountRow, AccountStore } from '../account/account.store.ts';
import type { AccessService } from '../access/access.service.ts';
import type { DenialReason } from '../access/access-rules.ts';
import { DENIAL_REASON_TEXT, denialDescription } from '../access/denial-text.ts';
import type { SigninLog } from '../audit/signin-log.ts';
import { accessDenied } from '../audit/signin-reasons.ts';
import type { ClientStore } from '../client/client.store.ts';
import type { Config } from '../config/config.ts';
import type { Database } from '../db/database.ts';
import { randomToken, sha256 } from '../crypto/tokens.ts';
import { formBody } from '../http/form-body.ts';
import type { Renderer } from '../http/renderer.ts';
import { ACR_MFA } from '../mfa/assurance.ts';
import { eduPersonScope } from '../account/eduperson.ts';
import { DomainError } from '../shared/errors.ts';
import type { AnonymousCap } from '../throttle/anonymous-cap.ts';
import type { InteractionStateStore } from '../interaction/interaction-state.store.ts';
import { samlLogout } from './slo.ts';
import { postToSp } from './post-binding.ts';
import { nameIdFor, nameIdSettingOf, releasedAttributes, type NameId, type NameIdSetting, type SamlAttributeName } from './attributes.ts';
import { readAuthnRequest, type AuthnRequest } from './authn-request.ts';
import { AUTHN_CONTEXT, BINDING, NAMEID_FORMAT, STATUS } from './constants.ts';
import { decodePost, decodeRedirect, readRelayState, type RedirectMessage } from './xml.ts';
import { checkDestination, checkSignature, findServiceProvider, samlRefusal, type ServiceProvider } from './service-provider.ts';
import { buildResponse, buildStatusResponse } from './response.ts';
import { subjectRequirement } from './requested-subject.ts';
import { SamlError } from './saml-error.ts';
import type { PendingRequest, SamlRequestStore } from './saml-request.store.ts';
import type { SamlSessionStore } from './saml-session.store.ts';
import { idpMetadata } from './idp-metadata.ts';
import type { SamlKeys } from './saml-keys.ts';

export const SAML_CONTINUE_PATH = '/saml/continue';

/** How long an assertion may be presented, and how far an AuthnRequest's clock may be off ours. */
const ASSERTION_SECONDS = 300;
const REQUEST_CLOCK_SKEW_SECONDS = 300;

export interface SamlDeps {
  config: Config;
  renderer: Renderer;
  provider: () => Provider;
  keys: SamlKeys;
  clients: ClientStore;
  accounts: AccountStore;
  requests: SamlRequestStore;
  sessions: SamlSessionStore;
  anonymousCap: AnonymousCap;
  pairwiseKey: KeyObject;
  /** Where a logout's progress is kept (the interaction state store, under its own keys). */
  state: InteractionStateStore;
  /** Ends one sign-in session by its uid, with the back-channel logout of its relying parties. */
  endSession: (sessionUid: string) => Promise<unknown>;
  /** The access rules, asked again when the answer is made. */
  access: AccessService;
  signinLog: SigninLog;
  /** One transaction for what an answer uses up and writes (at /saml/continue, to a LogoutRequest): all of it or none. */
  unitOfWork: Database['unitOfWork'];
}

/** The IdP's name and endpoints, all under the issuer. */
export function samlEndpoints(issuer: string) {
  return { entityId: `${issuer}/saml/metadata`, sso: `${issuer}/saml/sso`, slo: `${issuer}/saml/slo`, continue: `${issuer}${SAML_CONTINUE_PATH}` };
}

/**
 * SAML 2.0 Web Browser SSO (profiles 4.1) on top of the OIDC provider. An AuthnRequest is checked
 * against the SP's registration and kept server-side; the browser then goes through the ordinary
 * authorization of the SP's bridge registration (client-settings: a SAML SP is a client whose
 * codes come back to /saml/continue), so every sign-in step applies to SAML exactly as to OIDC:
 * password policy, MFA step-up, access rules and the 53003 page, education, notices. Back at
 * /saml/continue the code is redeemed in-process and the SP gets a signed Response by HTTP-POST,
 * or a signed status response saying why not.
 */
export function samlRoutes(deps: SamlDeps): { router: Router; afterSignOut: Middleware } {
  const router = new Router();
  const endpoints = samlEndpoints(deps.config.issuer);

  // A message that cannot be read or trusted is refused on Akamon's own page (its sender is not
  // known, or not to be answered); the reason goes to the log, for the SP's administrators.
  router.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const refusal = error instanceof SamlError ? samlDomainError(error) : error;
      if (refusal instanceof DomainError && refusal.code.startsWith('saml_')) ctx.state.log.info({ errorCode: refusal.code, reason: refusal.message }, 'SAML message refused');
      throw refusal;
    }
  });

  router.get('/saml/metadata', async (ctx) => {
    const keys = deps.keys;
    ctx.type = 'application/samlmetadata+xml';
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = idpMetadata({
      entityId: endpoints.entityId,
      ssoUrl: endpoints.sso,
      sloUrl: endpoints.slo,
      certificates: await keys.certificates(),
      nameIdFormats: [NAMEID_FORMAT.persistent, NAMEID_FORMAT.transient, NAMEID_FORMAT.emailAddress, NAMEID_FORMAT.unspecified],
      scope: eduPersonScope(deps.config),
    });
  });

  router.get('/saml/sso', async (ctx) => {
    const message = decodeRedirect(ctx.querystring, 'SAMLRequest');
    await receive(ctx, readAuthnRequest(message.xml), message.relayState ?? null, message);
  });

  router.post('/saml/sso', formBody, async (ctx) => {
    const body = ctx.request.body as Record<string, string>;
    if (!body.SAMLRequest) throw new SamlError('malformed', 'no SAMLRequest in the form');
    await receive(ctx, readAuthnRequest(decodePost(body.SAMLRequest)), readRelayState(body.RelayState) ?? null, undefined);
  });

  /** IdP-initiated sign-in (the service directory's link), for SPs registered for it. */
  router.get('/saml/init', async (ctx) => {
    const entityId = String(ctx.query.sp ?? '');
    const sp = await serviceProvider(entityId);
    if (!sp?.values.idpInitiated) throw samlRefusal(`${entityId} does not accept sign-in started here`);
    // Any site may link here (a campus portal does); only Akamon's own pages may say where at the
    // SP the person lands, so that no other site can send a signed-in person somewhere of its choosing.
    const fetchSite = ctx.get('sec-fetch-site');
    const ownPage = fetchSite === '' || fetchSite === 'same-origin' || fetchSite === 'none';
    const relayState = ownPage ? (readRelayState(typeof ctx.query.RelayState === 'string' ? ctx.query.RelayState : undefined) ?? null) : null;
    await start(ctx, sp, { ...newPending(), acsUrl: defaultAcs(sp), relayState, requestId: null, nameIdFormat: sp.values.nameIdFormat });
  });

  // The request's take, the code's redemption, the access decision's log row and the SAML session
  // are one unit of work: after a fault none of them was kept, the binding cookie is still there,
  // and the browser's reload answers the request. The take's row lock makes parallel answers wait
  // for the first one's outcome: exactly one of them answers.
  router.get(SAML_CONTINUE_PATH, async (ctx) => {
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    const binding = browserBinding(ctx, state);
    await deps.unitOfWork(() => answerContinue(ctx, state, binding));
    ctx.cookies.set(bindingCookie(state), null, { path: SAML_CONTINUE_PATH, signed: false });
  });

  async function answerContinue(ctx: Context, state: string, binding: string) {
    const pending = await deps.requests.take(state, binding);
    if (!pending) throw new DomainError('saml_expired', 'no SAML request of this browser is waiting for this answer');
    const sp = await serviceProvider(pending.clientId);
    if (!sp) throw new DomainError('saml_expired', `the service provider ${pending.clientId} is no longer registered`);
    // The metadata may have changed while the person signed in: answer only where it still says.
    chooseAcs(sp, { protocolBinding: null, acsUrl: pending.acsUrl, acsIndex: null });
    const error = typeof ctx.query.error === 'string' ? ctx.query.error : undefined;
    // The browser wrote this query: the SP, which takes a signed StatusMessage as Akamon's word, is
    // told only what Akamon says itself (statusForError).
    if (error) return answerStatus(ctx, sp, pending, statusForError(error, ctx.query.error_description, pending));
    const signedIn = await redeem(ctx, sp, pending);
    if (!signedIn) return answerStatus(ctx, sp, pending, { top: STATUS.responder, second: STATUS.authnFailed });
    // The rules are asked again, as at /token (oidc/find-account.ts): the person may have been denied,
    // or the SP made to require MFA this sign-in did not show, since the code was issued.
    const decision = await deps.access.decide(signedIn.account, sp.row, { amr: signedIn.amr });
    if (!decision.allowed) {
      await deps.signinLog.record({
        accountId: signedIn.account.id,
        clientId: sp.row.client_id,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent') || null,
        result: 'failure',
        reason: accessDenied(decision.reason),
      });
      return answerStatus(ctx, sp, pending, { top: STATUS.responder, second: STATUS.requestDenied, message: denialDescription(decision.reason) });
    }
    // What the request asked of the sign-in is checked on what was done, not on what the browser
    // carried to the provider (it could have edited prompt=login or acr_values out of the URL).
    // auth_time has whole seconds: a sign-in counts as new from the second after the request came.
    if (pending.forceAuthn && signedIn.authTime.getTime() <= Math.floor(pending.receivedAt / 1000) * 1000) {
      return answerStatus(ctx, sp, pending, { top: STATUS.responder, second: STATUS.authnFailed, message: 'ForceAuthn: no new sign-in was made' });
    }
    if (pending.wantsMfa && signedIn.acr !== ACR_MFA) return answerStatus(ctx, sp, pending, { top: STATUS.responder, second: STATUS.noAuthnContext });
    // Core 3.4.1.4 and profiles 4.1.4.1: an assertion answering a request that named its Subject is
    // about that person or not given, whether they signed in now or had a session: the NameID this
    // SP gets for the one signed in must be the one named, compared exactly (core 3.3.4, "identical").
    // Compared last, so that a match is only ever told by the assertion itself.
    if (pending.subject && nameIdFor(pending.subject.setting, subjectAt(sp, signedIn.account))?.value !== pending.subject.value) {
      return answerStatus(ctx, sp, pending, { top: STATUS.requester, second: STATUS.unknownPrincipal, message: 'the person signed in is not the Subject the request named' });
    }
    await answerAssertion(ctx, sp, pending, signedIn);
  }

  const serviceProvider = (entityId: string) => findServiceProvider(deps.clients, entityId);

  function defaultAcs(sp: ServiceProvider): string {
    const posts = sp.values.spMetadata!.acs.filter((s) => s.binding === BINDING.post);
    return (posts.find((s) => s.isDefault) ?? [...posts].sort((a, b) => a.index - b.index)[0]).location;
  }

  /** The consumer service to answer at: the one the request names, if registered for HTTP-POST. */
  function chooseAcs(sp: ServiceProvider, request: Pick<AuthnRequest, 'protocolBinding' | 'acsUrl' | 'acsIndex'>): string {
    if (request.protocolBinding && request.protocolBinding !== BINDING.post) throw samlRefusal(`answers go by HTTP-POST only, not ${request.protocolBinding}`);
    const registered = sp.values.spMetadata!.acs.filter((s) => s.binding === BINDING.post);
    if (request.acsUrl !== null) {
      if (!registered.some((s) => s.location === request.acsUrl)) throw samlRefusal(`the consumer service ${request.acsUrl} is not in the registered metadata`);
      return request.acsUrl;
    }
    if (request.acsIndex !== null) {
      const byIndex = registered.find((s) => s.index === request.acsIndex);
      if (!byIndex) throw samlRefusal(`no registered HTTP-POST consumer service has index ${request.acsIndex}`);
      return byIndex.location;
    }
    return defaultAcs(sp);
  }

  async function receive(ctx: Context, request: AuthnRequest, relayState: string | null, redirect: RedirectMessage | undefined) {
    const sp = await serviceProvider(request.issuer);
    if (!sp) throw samlRefusal(`unknown service provider ${request.issuer}`);
    checkDestination(request.destination, endpoints.sso, checkSignature(sp, { redirect, document: request.document }));
    const age = (Date.now() - request.issueInstant.getTime()) / 1000;
    if (Math.abs(age) > REQUEST_CLOCK_SKEW_SECONDS) throw samlRefusal(`the request was issued ${Math.round(age)} s from now: too far from this server's clock`);
    const acsUrl = chooseAcs(sp, request);
    const nameIdFormat = nameIdFormatFor(sp, request.nameIdFormat);
    const needs = contextNeeds(request.requestedAuthnContext);
    const subject = request.subject && subjectRequirement(request.subject, sp.values.nameIdFormat, { idp: endpoints.entityId, sp: sp.entityId });
    const pending: PendingRequest = {
      ...newPending(),
      acsUrl,
      relayState,
      requestId: request.id,
      passive: request.isPassive,
      forceAuthn: request.forceAuthn,
      wantsMfa: needs === 'mfa',
      nameIdFormat: nameIdFormat ?? sp.values.nameIdFormat,
      ...(subject && 'require' in subject ? { subject: subject.require } : {}),
    };
    // From here on the SP is known and its consumer service checked: problems are answered to it.
    const problem = !nameIdFormat
      ? { top: STATUS.requester, second: STATUS.invalidNameIdPolicy }
      : needs === 'unsatisfiable'
        ? { top: STATUS.requester, second: STATUS.noAuthnContext }
        : subject && 'refuse' in subject
          ? subject.refuse
          : undefined;
    if (problem) {
      await remember(ctx, sp, pending);
      return answerStatus(ctx, sp, pending, problem);
    }
    await start(ctx, sp, pending);
  }

  /**
   * The NameID format to answer with: the registered one, unless the SP asks for transient (which
   * tells it less; mod_auth_mellon always asks for it). Any other format than the registered one
   * is refused (undefined): it could release what the SP was not registered to get (an address).
   */
  function nameIdFormatFor(sp: ServiceProvider, asked: string | null): NameIdSetting | undefined {
    if (!asked || asked === NAMEID_FORMAT.unspecified) return sp.values.nameIdFormat;
    const setting = nameIdSettingOf(asked);
    return setting === 'transient' || setting === sp.values.nameIdFormat ? setting : undefined;
  }

  /**
   * Stores the request (counted against the sender's anonymous budget: anyone can send one), bound
   * to this browser by a cookie of its own: one per request, so that requests in several tabs do
   * not displace each other, and sent only to /saml/continue.
   */
  async function remember(ctx: Context, sp: ServiceProvider, pending: PendingRequest): Promise<string> {
    await deps.anonymousCap.take(ctx.ip);
    const secret = randomToken();
    const id = await deps.requests.add(sp.row.client_id, sha256(secret), pending, deps.config.ttl.interaction);
    // Lax: the way back to /saml/continue is a top-level navigation. Not signed: the value is a
    // random secret whose hash the request keeps, which no one can make up.
    ctx.cookies.set(bindingCookie(id), secret, {
      signed: false,
      httpOnly: true,
      sameSite: 'lax',
      secure: deps.config.production,
      path: SAML_CONTINUE_PATH,
      maxAge: deps.config.ttl.interaction * 1000,
      overwrite: true,
    });
    return id;
  }

  /** The name of the cookie that binds request `id` to the browser that sent it. */
  function bindingCookie(id: string): string {
    return `${deps.config.production ? '__Secure-' : ''}akamon_saml_${sha256(id).slice(0, 16)}`;
  }

  function browserBinding(ctx: Context, id: string): string {
    return sha256(ctx.cookies.get(bindingCookie(id), { signed: false }) ?? '');
  }

  async function start(ctx: Context, sp: ServiceProvider, pending: PendingRequest) {
    const state = await remember(ctx, sp, pending);
    const auth = new URL(`${deps.config.issuer}/auth`);
    const params: Record<string, string> = {
      client_id: sp.row.client_id,
      response_type: 'code',
      redirect_uri: endpoints.continue,
      scope: 'openid',
      state,
      // The code is redeemed in-process and never leaves Akamon; the verifier is kept with the
      // request only, so the code answers this request alone and cannot be redeemed at /token.
      code_challenge: sha256(pending.verifier),
      code_challenge_method: 'S256',
    };
    if (pending.passive) params.prompt = 'none';
    else if (pending.forceAuthn) params.prompt = 'login';
    if (pending.wantsMfa) params.acr_values = ACR_MFA;
    for (const [key, value] of Object.entries(params)) auth.searchParams.set(key, value);
    ctx.redirect(auth.href);
  }

  /** The code the provider sent back for this request, consumed here: the account and what the sign-in did. */
  async function redeem(ctx: Context, sp: ServiceProvider, pending: PendingRequest) {
    const value = typeof ctx.query.code === 'string' ? ctx.query.code : '';
    const code = value && value.length < 200 ? await deps.provider().AuthorizationCode.find(value) : undefined;
    if (!code || (code as unknown as { consumed?: unknown }).consumed || code.isExpired) return undefined;
    const ours = code.clientId === sp.row.client_id && code.redirectUri === endpoints.continue && code.codeChallenge === sha256(pending.verifier);
    if (!ours || !code.authTime || !code.sessionUid) return undefined;
    await code.consume();
    const account = await deps.accounts.findById(String(code.accountId));
    if (!account) return undefined;
    return { account, acr: String(code.acr ?? ''), amr: code.amr, authTime: new Date(Number(code.authTime) * 1000), sessionUid: String(code.sessionUid) };
  }

  /** The person as this SP knows them: what its NameIDs and attributes are made from. */
  function subjectAt(sp: ServiceProvider, account: AccountRow) {
    return { account, sp: sp.row.client_id, scope: eduPersonScope(deps.config), pairwiseKey: deps.pairwiseKey, idp: endpoints.entityId, transient: () => `_${randomToken()}` };
  }

  async function answerAssertion(ctx: Context, sp: ServiceProvider, pending: PendingRequest, signedIn: NonNullable<Awaited<ReturnType<typeof redeem>>>) {
    const subject = subjectAt(sp, signedIn.account);
    const nameId = nameIdFor(pending.nameIdFormat, subject);
    if (!nameId) return answerStatus(ctx, sp, pending, { top: STATUS.responder, second: STATUS.invalidNameIdPolicy, message: 'the account has no value for this NameID format' });
    const sessionIndex = `_${randomToken()}`;
    const key = await deps.keys.signing();
    const metadata = sp.values.spMetadata!;
    const xml = await buildResponse({
      issuer: endpoints.entityId,
      destination: pending.acsUrl,
      inResponseTo: pending.requestId,
      audience: sp.row.client_id,
      recipient: pending.acsUrl,
      notOnOrAfterSeconds: ASSERTION_SECONDS,
      now: new Date(),
      nameId: nameId as NameId,
      sessionIndex,
      authnInstant: signedIn.authTime,
      authnContextClassRef: signedIn.acr === ACR_MFA ? AUTHN_CONTEXT.mfa : AUTHN_CONTEXT.passwordProtectedTransport,
      attributes: releasedAttributes(sp.values.attributes as SamlAttributeName[], subject, sp.values.attributeNames ?? []),
      sign: { response: sp.values.signed !== 'assertion', assertion: sp.values.signed !== 'response' },
      key,
      encryptTo: sp.values.encryptAssertions ? (metadata.encryptionCertificates[0] ?? null) : null,
    }).catch((error: Error) => {
      // Akamon's side (a value it cannot put in XML, a certificate it cannot encrypt to): an error
      // for the operator, a Responder status for the SP, never the SP's fault.
      ctx.state.log.error({ err: { message: error.message }, sp: sp.entityId }, 'SAML response could not be built');
      return undefined;
    });
    if (!xml) return answerStatus(ctx, sp, pending, { top: STATUS.responder });
    // Kept no longer than the sign-in session can last: its lifetime counts from the sign-in.
    const sessionLeft = deps.config.ttl.session - Math.floor((Date.now() - signedIn.authTime.getTime()) / 1000);
    await deps.sessions.add({ id: sessionIndex, clientId: sp.row.client_id, accountId: signedIn.account.id, sessionUid: signedIn.sessionUid, nameId }, Math.max(60, sessionLeft));
    answer(ctx, sp, pending, xml);
  }

  async function answerStatus(ctx: Context, sp: ServiceProvider, pending: PendingRequest, status: { top: string; second?: string; message?: string }) {
    // Why a sign-in did not reach the SP, for the operator its administrators will ask.
    ctx.state.log.info({ sp: sp.entityId, status: status.second ?? status.top, reason: status.message }, 'SAML status response');
    const xml = buildStatusResponse({ issuer: endpoints.entityId, destination: pending.acsUrl, inResponseTo: pending.requestId, status, now: new Date(), key: await deps.keys.signing() });
    answer(ctx, sp, pending, xml);
  }

  function answer(ctx: Context, sp: ServiceProvider, pending: PendingRequest, xml: string) {
    postToSp(ctx, deps.renderer, { action: pending.acsUrl, service: sp.values, param: 'SAMLResponse', xml, relayState: pending.relayState });
  }

  const logout = samlLogout(deps, endpoints.slo, endpoints.entityId);
  logout.routes(router);
  return { router, afterSignOut: logout.afterSignOut };
}

/**
 * What a RequestedAuthnContext asks of the sign-in, in Akamon's two classes (password over TLS,
 * then REFEDS MFA, the stronger): nothing more than a password, MFA, or something it cannot give
 * (core 3.3.2.2.1: exact one of them, at least one of them, better than one, at most one).
 */
function contextNeeds(context: AuthnRequest['requestedAuthnContext']): 'password' | 'mfa' | 'unsatisfiable' {
  if (!context) return 'password';
  const password = context.classRefs.includes(AUTHN_CONTEXT.passwordProtectedTransport);
  const mfa = context.classRefs.includes(AUTHN_CONTEXT.mfa);
  switch (context.comparison) {
    case 'exact':
    case 'minimum':
      return password ? 'password' : mfa ? 'mfa' : 'unsatisfiable';
    case 'better':
      return password ? 'mfa' : 'unsatisfiable';
    case 'maximum':
      return password || mfa ? 'password' : 'unsatisfiable';
  }
}

const DENIAL_REASONS = Object.keys(DENIAL_REASON_TEXT) as DenialReason[];

/** The parts of a pending request that are the same for every kind of start. */
function newPending() {
  return { passive: false, forceAuthn: false, wantsMfa: false, receivedAt: Date.now(), verifier: randomToken() };
}

/**
 * What the SP is told when the authorization ended in an OAuth error. A denial names the rule only
 * when the description is exactly one Akamon writes (the 53003 page's way back, leaveDenial in
 * interaction/steps/client-access.ts), and then in Akamon's own words; anything else is a denial
 * without a reason.
 */
function statusForError(error: string, description: unknown, pending: PendingRequest): { top: string; second?: string; message?: string } {
  if (pending.passive && ['login_required', 'interaction_required', 'consent_required', 'account_selection_required'].includes(error)) return { top: STATUS.responder, second: STATUS.noPassive };
  if (error !== 'access_denied') return { top: STATUS.responder, second: STATUS.authnFailed };
  const rule = DENIAL_REASONS.find((reason) => denialDescription(reason) === description);
  return { top: STATUS.responder, second: STATUS.requestDenied, ...(rule ? { message: denialDescription(rule) } : {}) };
}

/** A message Akamon will not trust (its signature) is refused; one it cannot read is malformed. */
function samlDomainError(error: SamlError): DomainError {
  if (error.code === 'bad_signature' || error.code === 'unsigned') return new DomainError('saml_refused', error.message);
  return new DomainError('saml_malformed', error.message);
}
