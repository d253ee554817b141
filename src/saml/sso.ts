import { createHash } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { AccountStore } from '../account/account.store.ts';
import type { ClientStore } from '../client/client.store.ts';
import type { Config } from '../config/config.ts';
import { randomToken } from '../crypto/tokens.ts';
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
import { checkSignature, findServiceProvider, samlRefusal, type ServiceProvider } from './service-provider.ts';
import { buildResponse, buildStatusResponse } from './response.ts';
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
  pairwiseKey: Buffer;
  /** Where a logout's progress is kept (the interaction state store, under its own keys). */
  state: InteractionStateStore;
  /** Ends one sign-in session by its uid, with the back-channel logout of its relying parties. */
  endSession: (sessionUid: string) => Promise<unknown>;
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
  const cookieName = deps.config.production ? '__Host-akamon_saml' : 'akamon_saml';

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
    const acs = defaultAcs(sp);
    const relayState = readRelayState(typeof ctx.query.RelayState === 'string' ? ctx.query.RelayState : undefined) ?? null;
    await start(ctx, sp, { acsUrl: acs, relayState, requestId: null, passive: false, wantsMfa: false, nameIdFormat: sp.values.nameIdFormat }, {});
  });

  router.get(SAML_CONTINUE_PATH, async (ctx) => {
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    const pending = await deps.requests.take(state, browserHash(ctx));
    if (!pending) throw new DomainError('saml_expired', 'no SAML request of this browser is waiting for this answer');
    const sp = await serviceProvider(pending.clientId);
    if (!sp) throw new DomainError('saml_expired', `the service provider ${pending.clientId} is no longer registered`);
    const error = typeof ctx.query.error === 'string' ? ctx.query.error : undefined;
    if (error) return answerStatus(ctx, sp, pending, statusForError(error, pending));
    const account = await redeem(ctx, sp);
    if (!account) return answerStatus(ctx, sp, pending, { top: STATUS.responder, second: STATUS.authnFailed });
    if (pending.wantsMfa && account.acr !== ACR_MFA) return answerStatus(ctx, sp, pending, { top: STATUS.responder, second: STATUS.noAuthnContext });
    await answerAssertion(ctx, sp, pending, account);
  });

  const serviceProvider = (entityId: string) => findServiceProvider(deps.clients, entityId);

  function defaultAcs(sp: ServiceProvider): string {
    const posts = sp.values.spMetadata!.acs.filter((s) => s.binding === BINDING.post);
    return (posts.find((s) => s.isDefault) ?? [...posts].sort((a, b) => a.index - b.index)[0]).location;
  }

  /** The consumer service to answer at: the one the request names, if registered for HTTP-POST. */
  function chooseAcs(sp: ServiceProvider, request: AuthnRequest): string {
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
    checkSignature(sp, { redirect, document: request.document });
    if (request.destination !== null && request.destination !== endpoints.sso) throw samlRefusal(`the request is addressed to ${request.destination}, not ${endpoints.sso}`);
    const age = (Date.now() - request.issueInstant.getTime()) / 1000;
    if (Math.abs(age) > REQUEST_CLOCK_SKEW_SECONDS) throw samlRefusal(`the request was issued ${Math.round(age)} s from now: too far from this server's clock`);
    const acsUrl = chooseAcs(sp, request);
    const nameIdFormat = nameIdFormatFor(sp, request.nameIdFormat);
    const pending: PendingRequest = { acsUrl, relayState, requestId: request.id, passive: request.isPassive, wantsMfa: wantsMfa(request), nameIdFormat: nameIdFormat ?? sp.values.nameIdFormat };
    // From here on the SP is known and its consumer service checked: problems are answered to it.
    const problem = nameIdFormat ? contextProblem(request) : { top: STATUS.requester, second: STATUS.invalidNameIdPolicy };
    if (problem) {
      await remember(ctx, sp, pending);
      return answerStatus(ctx, sp, pending, problem);
    }
    await start(ctx, sp, pending, { forceAuthn: request.forceAuthn });
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

  /** An authentication context Akamon does not know, asked for exactly. */
  function contextProblem(request: AuthnRequest): { top: string; second: string } | undefined {
    const context = request.requestedAuthnContext;
    const known = [AUTHN_CONTEXT.mfa, AUTHN_CONTEXT.passwordProtectedTransport] as string[];
    if (context && context.comparison === 'exact' && !context.classRefs.some((ref) => known.includes(ref))) return { top: STATUS.requester, second: STATUS.noAuthnContext };
    return undefined;
  }

  /** Stores the request (counted against the sender's anonymous budget: anyone can send one). */
  async function remember(ctx: Context, sp: ServiceProvider, pending: PendingRequest): Promise<string> {
    await deps.anonymousCap.take(ctx.ip);
    return deps.requests.add(sp.row.client_id, browserHash(ctx, true), pending, deps.config.ttl.interaction);
  }

  async function start(ctx: Context, sp: ServiceProvider, pending: PendingRequest, options: { forceAuthn?: boolean }) {
    const state = await remember(ctx, sp, pending);
    const auth = new URL(`${deps.config.issuer}/auth`);
    const params: Record<string, string> = {
      client_id: sp.row.client_id,
      response_type: 'code',
      redirect_uri: endpoints.continue,
      scope: 'openid',
      state,
      // The code is redeemed in-process and never leaves Akamon; PKCE is what the provider asks of
      // a client without a secret, so the challenge is made from nothing a third party can see.
      code_challenge: createHash('sha256').update(state).digest('base64url'),
      code_challenge_method: 'S256',
    };
    if (pending.passive) params.prompt = 'none';
    else if (options.forceAuthn) params.prompt = 'login';
    if (pending.wantsMfa) params.acr_values = ACR_MFA;
    for (const [key, value] of Object.entries(params)) auth.searchParams.set(key, value);
    ctx.redirect(auth.href);
  }

  /** The code the provider sent back, consumed here: the account and what the sign-in did. */
  async function redeem(ctx: Context, sp: ServiceProvider) {
    const value = typeof ctx.query.code === 'string' ? ctx.query.code : '';
    const code = value && value.length < 200 ? await deps.provider().AuthorizationCode.find(value) : undefined;
    if (!code || (code as unknown as { consumed?: unknown }).consumed || code.isExpired || code.clientId !== sp.row.client_id || code.redirectUri !== endpoints.continue) return undefined;
    await code.consume();
    const account = await deps.accounts.findById(String(code.accountId));
    if (!account) return undefined;
    return { account, acr: String(code.acr ?? ''), authTime: new Date(Number(code.authTime ?? 0) * 1000), sessionUid: String(code.sessionUid ?? '') };
  }

  async function answerAssertion(ctx: Context, sp: ServiceProvider, pending: PendingRequest, signedIn: NonNullable<Awaited<ReturnType<typeof redeem>>>) {
    const subject = { account: signedIn.account, sp: sp.row.client_id, scope: eduPersonScope(deps.config), pairwiseKey: deps.pairwiseKey };
    const nameId = nameIdFor(pending.nameIdFormat, { ...subject, idp: endpoints.entityId, transient: () => `_${randomToken()}` });
    if (!nameId) return answerStatus(ctx, sp, pending, { top: STATUS.responder, second: STATUS.invalidNameIdPolicy, message: 'the account has no value for this NameID format' });
    const sessionIndex = `_${randomToken()}`;
    await deps.sessions.add({ id: sessionIndex, clientId: sp.row.client_id, accountId: signedIn.account.id, sessionUid: signedIn.sessionUid, nameId }, deps.config.ttl.session);
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
      attributes: releasedAttributes(sp.values.attributes as SamlAttributeName[], subject),
      sign: { response: sp.values.signed !== 'assertion', assertion: sp.values.signed !== 'response' },
      key,
      encryptTo: sp.values.encryptAssertions ? (metadata.encryptionCertificates[0] ?? null) : null,
    });
    answer(ctx, sp, pending, xml);
  }

  async function answerStatus(ctx: Context, sp: ServiceProvider, pending: PendingRequest, status: { top: string; second?: string; message?: string }) {
    const xml = buildStatusResponse({ issuer: endpoints.entityId, destination: pending.acsUrl, inResponseTo: pending.requestId, status, now: new Date(), key: await deps.keys.signing() });
    answer(ctx, sp, pending, xml);
  }

  function answer(ctx: Context, sp: ServiceProvider, pending: PendingRequest, xml: string) {
    postToSp(ctx, deps.renderer, { action: pending.acsUrl, serviceName: sp.values.name, param: 'SAMLResponse', xml, relayState: pending.relayState });
  }

  /** A random value per browser in a signed cookie; a request is answered only to the browser that sent it. */
  function browserHash(ctx: Context, create = false): string {
    let value = ctx.cookies.get(cookieName, { signed: true });
    if (!value && create) {
      value = randomToken();
      // Lax: the way back to /saml/continue is a top-level navigation, from the SP's POST onwards.
      ctx.cookies.set(cookieName, value, { signed: true, httpOnly: true, sameSite: 'lax', secure: deps.config.production, path: '/', overwrite: true });
    }
    return createHash('sha256')
      .update(value ?? '')
      .digest('base64url');
  }

  const logout = samlLogout(deps, endpoints.slo, endpoints.entityId);
  logout.routes(router);
  return { router, afterSignOut: logout.afterSignOut };
}

/** REFEDS MFA asked for (minimum or exact): the sign-in must include a second factor. */
function wantsMfa(request: AuthnRequest): boolean {
  return request.requestedAuthnContext?.classRefs.includes(AUTHN_CONTEXT.mfa) ?? false;
}

/** What the SP is told when the authorization ended in an OAuth error. */
function statusForError(error: string, pending: PendingRequest): { top: string; second?: string } {
  if (pending.passive && ['login_required', 'interaction_required', 'consent_required', 'account_selection_required'].includes(error)) return { top: STATUS.responder, second: STATUS.noPassive };
  if (error === 'access_denied') return { top: STATUS.responder, second: STATUS.requestDenied };
  return { top: STATUS.responder, second: STATUS.authnFailed };
}

/** A message Akamon will not trust (its signature) is refused; one it cannot read is malformed. */
function samlDomainError(error: SamlError): DomainError {
  if (error.code === 'bad_signature' || error.code === 'unsigned') return new DomainError('saml_refused', error.message);
  return new DomainError('saml_malformed', error.message);
}
