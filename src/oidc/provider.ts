import type { KeyObject } from 'node:crypto';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { deliverAfterCommit } from './backchannel.ts';
import type { Config } from '../config/config.ts';
import { hmac } from '../crypto/tokens.ts';
import type { KeyMaterial } from './keys.ts';
import { outboundFetch } from './outbound-fetch.ts';
import { ACR_VALUES } from '../mfa/assurance.ts';
import { PASSWORD_GRANT_PARAMETERS } from './password-grant.ts';
import { accessTokenClaims } from './token-sign-in.ts';
import { DEVICE_CODE_TTL_SECONDS, UNUSED_FLOW_TTL_SECONDS } from '../config/defaults.ts';
import { CLIENT_NAME_JA } from '../client/client-settings.ts';
import type { DevicePages } from './device-pages.ts';
import { keepSignInTime, refreshUsesSession, sessionTtl } from './session-lifetime.ts';
import { CLIENT_AUTH_DISCOVERY, CLIENT_AUTHENTICATION } from './client-auth.ts';
import type { ResourceServers } from './resource-servers.ts';
import { SCOPE_CLAIMS } from './claims.ts';
import { carryClaimsLocales, NAME_FORMS } from './claims-locales.ts';

/** What the provider needs from the rest of Akamon; the composition root fills it in. */
export interface ProviderHooks {
  adapter: NonNullable<Configuration['adapter']>;
  findAccount: NonNullable<Configuration['findAccount']>;
  policy: NonNullable<NonNullable<Configuration['interactions']>['policy']>;
  loadExistingGrant: NonNullable<Configuration['loadExistingGrant']>;
  renderError: NonNullable<Configuration['renderError']>;
  logoutSource: (ctx: KoaContextWithOIDC, form: string) => Promise<void> | void;
  postLogoutSuccessSource: (ctx: KoaContextWithOIDC) => Promise<void> | void;
  pairwiseKey: KeyObject;
  passwordGrant: (ctx: KoaContextWithOIDC) => Promise<void>;
  /** APIs: their resource indicators, who may introspect which token, and the introspection's username. */
  resourceServers: ResourceServers;
  /** The device flow's verification pages (device-pages.ts). */
  devicePages: DevicePages;
}

export function cookieNames(config: Config) {
  // __Host- needs https and Path=/; the interaction cookies are path-scoped, so they get __Secure-.
  return config.production
    ? { session: '__Host-akamon_session', interaction: '__Secure-akamon_interaction', resume: '__Secure-akamon_resume' }
    : { session: 'akamon_session', interaction: 'akamon_interaction', resume: 'akamon_resume' };
}

export function createProvider(config: Config, keys: KeyMaterial, hooks: ProviderHooks): Provider {
  const sessionLimits = { absolute: config.ttl.session, idle: config.ttl.sessionIdle };
  const configuration: Configuration = {
    adapter: hooks.adapter,
    clients: [],
    // The client authentication methods and algorithms Akamon accepts, and discovery lists (client-auth.ts).
    ...CLIENT_AUTHENTICATION,
    findAccount: hooks.findAccount,
    jwks: keys.jwks as Configuration['jwks'],
    cookies: {
      keys: keys.cookieSignatures,
      names: cookieNames(config),
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    // The scopes and their claims (claims.ts); these scopes and offline_access are all there are,
    // and an authorization asking for others gets them ignored (OIDC Core 3.1.2.1).
    claims: { sid: null, iss: null, ...Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, [...claims]])) },
    acrValues: ACR_VALUES,
    // Akamon's own account home asks the enrolment step for one more sign-in method.
    extraParams: ['akamon_add_factor'],
    // Campus systems often read only the ID token: it carries the claims of the granted scopes too.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true },
    subjectTypes: ['public', 'pairwise'],
    pairwiseIdentifier: (_ctx, accountId, client) => hmac(hooks.pairwiseKey, `${client.sectorIdentifier}|${accountId}`),
    allowOmittingSingleRegisteredRedirectUri: false,
    extraClientMetadata: {
      properties: ['first_party', CLIENT_NAME_JA],
      validator(_ctx, key, value) {
        if (key === 'first_party' && value !== undefined && typeof value !== 'boolean') throw new Error('first_party must be a boolean');
        if (key === CLIENT_NAME_JA && value !== undefined && typeof value !== 'string') throw new Error(`${CLIENT_NAME_JA} must be a string`);
      },
    },
    interactions: {
      policy: hooks.policy,
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // Runs on every authorization that reaches a signed-in account, after the provider read the
    // claims parameter and before it makes the code: the moment to keep claims_locales for later.
    loadExistingGrant: (ctx) => {
      carryClaimsLocales(ctx);
      return hooks.loadExistingGrant(ctx);
    },
    // A sign-out revokes the tokens of its session's grants but keeps the grants: they record the
    // consent the next sign-in to the client starts from (grants.ts). Otherwise as the provider's
    // default: revoking an access token leaves its grant, any other revocation ends it.
    revokeGrantPolicy: (ctx) => ctx.oidc.route !== 'end_session_confirm' && !(ctx.oidc.route === 'revocation' && ctx.oidc.entities.AccessToken),
    // Access tokens keep the amr of their sign-in, for the access rules' MFA demand at each use.
    extraTokenClaims: accessTokenClaims,
    // Refresh tokens for every client allowed the grant; without offline_access they end with the session.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      // A client may introspect only tokens issued to it, an API those issued for it: no relying
      // party learns about another's. A token is active only while its client admits its account:
      // the same gate as userinfo and refresh (findAccount), so introspection answers as they do.
      introspection: {
        enabled: true,
        allowedPolicy: (ctx, client, token) => hooks.resourceServers.mayIntrospect(ctx, client, token, hooks.findAccount),
      },
      // Tokens for an API (RFC 8707): `resource=URI` of an API the client is registered for.
      resourceIndicators: { enabled: true, getResourceServerInfo: (ctx, indicator, client) => hooks.resourceServers.info(ctx, indicator, client) },
      userinfo: { enabled: true },
      // Back-end services that call each other's APIs; only clients registered with it may use it.
      clientCredentials: { enabled: true },
      // Command-line tools and devices without a browser (RFC 8628), for clients registered for it.
      // User codes: 8 letters of 20 consonants (no vowels, so no words; no look-alike characters),
      // about 34.5 bits, read case-insensitively with or without the dash.
      deviceFlow: { enabled: true, charset: 'base-20', mask: '****-****', ...hooks.devicePages },
      claimsParameter: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: hooks.logoutSource,
        postLogoutSuccessSource: hooks.postLogoutSuccessSource,
      },
    },
    fetch: outboundFetch(config.backchannelAllowPrivate),
    renderError: hooks.renderError,
    discovery: { ui_locales_supported: ['en', 'ja'], claims_locales_supported: ['en', 'ja', ...NAME_FORMS.filter((form) => form !== 'en')], ...CLIENT_AUTH_DISCOVERY },
    ttl: {
      // The idle and absolute lifetimes of session-lifetime.ts, recomputed at each save.
      Session: sessionTtl(sessionLimits, config.anonymous.sessionTtl),
      Interaction: config.ttl.interaction,
      Grant: config.ttl.refreshToken,
      AccessToken: config.ttl.accessToken,
      IdToken: config.ttl.idToken,
      AuthorizationCode: config.ttl.authorizationCode,
      RefreshToken: config.ttl.refreshToken,
      ClientCredentials: config.ttl.accessToken,
      BackchannelAuthenticationRequest: UNUSED_FLOW_TTL_SECONDS,
      DeviceCode: DEVICE_CODE_TTL_SECONDS,
    },
  };
  const provider = new Provider(config.issuer, configuration);
  keepSignInTime(provider);
  deliverAfterCommit(provider);
  provider.registerGrantType('password', hooks.passwordGrant, PASSWORD_GRANT_PARAMETERS);
  provider.use(refreshUsesSession(provider, sessionLimits));
  provider.use(hooks.resourceServers.introspectionUsername);
  return provider;
}
