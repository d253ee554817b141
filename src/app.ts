import { issuerHost } from './http/issuer-host.ts';
import Koa from 'koa';
import Router from '@koa/router';
import type Provider from 'oidc-provider';
import type { Deps } from './deps.ts';
import { DATABASE_RETRY_AFTER_SECONDS, READINESS_TIMEOUT_MS } from './config/defaults.ts';
import { CsrfGuard } from './http/csrf.ts';
import { Renderer } from './http/renderer.ts';
import { errorPages, languageSwitch, localeMiddleware, requestContext, requireHttps, securityHeaders } from './http/middleware.ts';
import { staticFiles } from './http/static-files.ts';
import { clientAddressMiddleware } from './http/client-address.ts';
import { inputGuard, surfaceByRoute } from './http/input-guard.ts';
import { RouteTable } from './http/route-table.ts';
import { ClientService } from './client/client.service.ts';
import { bindIssuer } from './db/issuer-binding.ts';
import { ensureKeys, loadKeyMaterial, newSigningKeys, rotateSigningKeys, type KeyTimings } from './oidc/keys.ts';
import { postgresAdapter } from './oidc/adapter.ts';
import { cappingAnonymousRecords } from './oidc/anonymous-records.ts';
import { AnonymousCap } from './throttle/anonymous-cap.ts';
import { cookieNames, createProvider } from './oidc/provider.ts';
import { ProviderHolder } from './oidc/provider-holder.ts';
import { metadataCache } from './oidc/metadata-cache.ts';
import { logRefusals } from './oidc/error-log.ts';
import { providerGate, PROVIDER_ERROR } from './oidc/provider-gate.ts';
import { protocolMethods } from './oidc/protocol-methods.ts';
import { RetryLaterError } from './shared/errors.ts';
import { findAccount } from './oidc/find-account.ts';
import { resourceServers } from './oidc/resource-servers.ts';
import { eduPersonScope } from './account/eduperson.ts';
import { scopeOfClaim } from './oidc/claims.ts';
import { logIgnoredAuthorizationScopes } from './oidc/ignored-scopes.ts';
import { loadExistingGrant } from './oidc/grants.ts';
import { providerPages } from './oidc/pages.ts';
import { devicePages } from './oidc/device-pages.ts';
import { devicePolling, deviceVerificationRoutes } from './oidc/device-flow.ts';
import { DeviceCodeLimits } from './throttle/device-codes.ts';
import { passwordGrant } from './oidc/password-grant.ts';
import { endSessionByUid, notifyAccountLogout } from './oidc/backchannel.ts';
import { vacuumEmbedded } from './db/embedded-vacuum.ts';
import { recoveryRoutes } from './recovery/recovery-routes.ts';
import { Captcha } from './recovery/captcha.ts';
import { buildPolicy, buildSteps } from './interaction/policy.ts';
import { factsLoader } from './interaction/facts.ts';
import { interactionPages } from './interaction/router.ts';
import { KnownAccounts } from './interaction/known-accounts.ts';
import { accountHome } from './selfservice/account-home.ts';
import { takeSiteSignedOutOf } from './selfservice/home-session.ts';
import { ACCOUNT_CLIENT_ID, CONSOLE_CLIENT_ID, FIRST_PARTY_SITES, type FirstPartySite } from './selfservice/account-client.ts';
import { consoleRoutes } from './console/console-routes.ts';
import { adminApi } from './admin/admin-api.ts';
import { scimApi } from './scim/scim-api.ts';
import { Sweeper } from './shared/sweeper.ts';
import { isDomainError } from './http/middleware.ts';
import { IdvFlow } from './idv/idv-flow.ts';
import { SamlKeys } from './saml/saml-keys.ts';
import { SamlRequestStore } from './saml/saml-request.store.ts';
import { SamlSessionStore } from './saml/saml-session.store.ts';
import { ENDED_SESSION } from './saml/slo.ts';
import { SAML_CONTINUE_PATH, samlRoutes } from './saml/sso.ts';
import { UpstreamIdp } from './idv/upstream.ts';
import { metricsRoute } from './metrics/metrics-route.ts';

export interface AkamonApp {
  app: Koa;
  provider: () => Provider;
  holder: ProviderHolder;
  clients: ClientService;
  sweeper: Sweeper;
  /** New signing keys; `record` (the audit) lands in the same transaction. */
  rotateKeys: (record?: (kids: string[]) => Promise<void>) => Promise<string[]>;
  /** Akamon's own routes, which the provider's paths pass by. */
  routes: RouteTable;
}

/**
 * Akamon's own sites (the account home, the console) are first-party clients of itself, registered
 * on first start and brought up to date at every start (a new issuer, names added in a release).
 */
async function ensureFirstPartyClient(clients: ClientService, issuer: string, site: FirstPartySite): Promise<void> {
  const { clientId, name, nameJa, prefix } = site;
  const wanted = { name, nameJa, redirectUris: [`${issuer}${prefix}/callback`], postLogoutRedirectUris: [`${issuer}/`], firstParty: true };
  try {
    const existing = await clients.show(clientId);
    if (existing.redirectUris[0] !== wanted.redirectUris[0] || existing.name !== name || existing.nameJa !== nameJa) await clients.update(clientId, wanted);
  } catch (error) {
    if (!isDomainError(error, 'client_not_found')) throw error;
    await clients.create(wanted, clientId).catch((e) => {
      if (!isDomainError(e, 'client_exists')) throw e; // another node registered it first
    });
  }
}

export async function buildApp(deps: Deps): Promise<AkamonApp> {
  const { config, database, box, logger } = deps;
  const db = database.db;
  // Before anything is written under this node's issuer (the account home's redirect URI below).
  const binding = await bindIssuer(db, config.issuer, config.migrateIssuerFrom);
  if (config.production && config.trustProxy && !config.proxiesNamed) {
    // Any host on a private network that reaches this node directly could say who the client is.
    logger.warn('AKAMON_TRUST_PROXY=true trusts X-Forwarded-For from every loopback and private address: set AKAMON_TRUSTED_PROXIES to the proxies in front of Akamon');
  }
  if (binding.kind === 'migrated') {
    logger.warn({ from: binding.from, to: config.issuer }, 'issuer migrated: every node must now run with the new AKAMON_ISSUER, and relying parties must be told');
  } else if (config.migrateIssuerFrom) {
    logger.warn({ issuer: config.issuer }, 'AKAMON_MIGRATE_ISSUER_FROM is set but there was nothing to migrate: remove the setting');
  }
  await ensureKeys(db, box);
  const timings: KeyTimings = {
    propagationSeconds: config.keyRefreshSeconds * 2,
    retiredGraceSeconds: Math.max(config.ttl.idToken, config.ttl.accessToken),
  };

  const csrf = new CsrfGuard(box.macKey('csrf'), config.production);
  const renderer = new Renderer(csrf);
  const app = new Koa();
  // For X-Forwarded-Proto and -Host; the client's address is clientAddressMiddleware's alone.
  app.proxy = config.trustProxy;

  // What a caller can make Akamon store without signing in, counted per source address and for everyone.
  const anonymousCap = new AnonymousCap(deps.throttle, config.anonymous);
  // The device flow's guessing limit of user codes and its polling interval.
  const deviceLimits = new DeviceCodeLimits(deps.throttle);

  // Identity verification through the upstream provider (the national ID card app), when configured.
  const idvFlow = deps.idvSettings
    ? new IdvFlow({
        config,
        renderer,
        csrf,
        state: deps.interactionState,
        throttle: deps.throttle,
        anonymousCap,
        idv: deps.idv,
        stateTtlSeconds: config.ttl.interaction,
        upstream: new UpstreamIdp(deps.idvSettings, `${config.issuer}/idv/callback`),
        unitOfWork: (work, keep) => database.unitOfWork(work, keep),
      })
    : undefined;

  let holder: ProviderHolder | undefined;
  const clients = new ClientService({
    store: deps.clientStore,
    box,
    validate: async (metadata) => {
      await holder!.provider.Client.validate(metadata as never);
    },
    allowHttpRedirects: !config.production,
    samlContinueUri: `${config.issuer}${SAML_CONTINUE_PATH}`,
    timeZone: config.timeZone,
  });

  const steps = buildSteps({
    config,
    accounts: deps.accounts,
    accountService: deps.accountService,
    passwordSignin: deps.passwordSignin,
    clients: deps.clientStore,
    access: deps.access,
    signinLog: deps.signinLog,
    knownAccounts: new KnownAccounts(config.production),
    mfa: deps.mfa,
    audit: deps.audit,
    unitOfWork: (work, keep) => database.unitOfWork(work, keep),
    recoveryEmail: deps.recoveryEmail,
    appPasswords: deps.appPasswords,
    clock: deps.clock,
    idv: idvFlow ? { flow: idvFlow, verification: deps.idv } : undefined,
    async decide(request) {
      const accountId = request.details.session?.accountId;
      const [account, client] = await Promise.all([accountId ? deps.accounts.findById(accountId) : undefined, deps.clientStore.find(String(request.details.params.client_id))]);
      return account && client ? deps.access.decide(account, client) : undefined;
    },
    scopeOfClaim,
  });
  const hooks = {
    adapter: cappingAnonymousRecords(
      postgresAdapter(db, async (id) => clients.providerMetadata(id) as never, config.tokenRetryGraceSeconds),
      anonymousCap,
    ),
    findAccount: findAccount(deps.accounts, deps.mfaStore, deps.clientStore, deps.access, { eduPersonScope: eduPersonScope(config) }),
    policy: buildPolicy(steps, factsLoader({ accounts: deps.accounts, clients: deps.clientStore, mfa: deps.mfaStore, access: deps.access, clock: deps.clock, rollout: config.mfaRollout })),
    loadExistingGrant: loadExistingGrant(
      (accountId, clientId) => deps.payloads.liveGrants(accountId, clientId),
      (work) => database.unitOfWork(work),
    ),
    pairwiseKey: box.macKey('pairwise-subject'),
    passwordGrant: passwordGrant(deps.passwordSignin, deps.clientStore, deps.access, config.realmSuffix),
    resourceServers: resourceServers({ clients: deps.clientStore, accounts: deps.accounts, access: deps.access }),
    ...providerPages(renderer, FIRST_PARTY_SITES, takeSiteSignedOutOf(config)),
    devicePages: devicePages(renderer),
  };
  const build = (keys: Parameters<typeof createProvider>[1]) => {
    const provider = createProvider(config, keys, hooks);
    provider.on('server_error', (ctx, error) => {
      // The gate answers these (503, or 429 for an address over its cap); anything else is a bug worth a stack trace in the log.
      if (error instanceof RetryLaterError) ctx.state[PROVIDER_ERROR] = error;
      else (ctx.state?.log ?? logger).error({ err: error }, 'oidc server error');
    });
    logRefusals(provider, logger);
    provider.use(logIgnoredAuthorizationScopes(logger));
    provider.use(devicePolling(deviceLimits));
    provider.on('grant.revoked', (_ctx, grantId) => logger.info({ grantId }, 'grant revoked'));
    deps.metrics.watchProvider(provider);
    // A sign-out that ended the whole session: the SAML SPs of that session are visited next (slo.ts).
    provider.on('end_session.success', (ctx) => {
      if (ctx.oidc.params?.logout) ctx.state[ENDED_SESSION] = ctx.oidc.session?.uid;
    });
    return provider;
  };
  const loadKeys = () => loadKeyMaterial(db, box, timings);
  const samlKeys = new SamlKeys(config.issuer);
  holder = new ProviderHolder(await loadKeys(), build, loadKeys, (keys) => {
    app.keys = keys.cookieSignatures;
    samlKeys.update(keys.rsaKeys);
  });
  const samlRequests = new SamlRequestStore(db);
  const samlSessions = new SamlSessionStore(db);
  for (const site of FIRST_PARTY_SITES) await ensureFirstPartyClient(clients, config.issuer, site);
  // Every session of the account ends: SAML SPs have no back channel here, their sessions are
  // marked ended with the rest (a later LogoutRequest finds none); then the relying parties with
  // back-channel logout are told.
  deps.payloads.onRevoke({
    alongside: (trx, accountId) => samlSessions.end({ accountId }, trx),
    after: (accountId, sessions) => notifyAccountLogout(holder!.provider, accountId, sessions),
  });

  // The key pairs are made first; their publication and `record` (the audit) are one transaction.
  const rotateKeys = async (record: (kids: string[]) => Promise<void> = async () => undefined) => {
    const keys = await newSigningKeys(box);
    const kids = await database.unitOfWork(async () => {
      const published = await rotateSigningKeys(db, keys, timings);
      await record(published);
      return published;
    });
    await holder!.refresh();
    return kids;
  };

  const pages = new Router();
  pages.get('/', (ctx) => renderer.page(ctx, 'home', 'home.title', { accountUrl: '/account' }));
  pages.get('/lang', languageSwitch());
  pages.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  // Answers within about a second in every state: a frozen database must not hang the probe.
  pages.get('/readyz', async (ctx) => {
    try {
      await database.ping(READINESS_TIMEOUT_MS);
      ctx.body = { status: 'ready' };
    } catch {
      ctx.status = 503;
      ctx.set('Retry-After', String(DATABASE_RETRY_AFTER_SECONDS));
      ctx.body = { status: 'database unavailable' };
    }
  });

  const saml = samlRoutes({
    config,
    renderer,
    provider: () => holder!.provider,
    keys: samlKeys,
    clients: deps.clientStore,
    accounts: deps.accounts,
    requests: samlRequests,
    sessions: samlSessions,
    anonymousCap,
    pairwiseKey: box.macKey('saml-pairwise'),
    state: deps.interactionState,
    endSession: (uid) => endSessionByUid(holder!.provider, uid),
    access: deps.access,
    signinLog: deps.signinLog,
    unitOfWork: (work, keep) => database.unitOfWork(work, keep),
  });

  const interaction = interactionPages({ provider: () => holder!.provider, steps, renderer, csrf, state: deps.interactionState, stateTtlSeconds: config.ttl.interaction });
  const routers = [
    pages,
    metricsRoute({ metrics: deps.metrics, operators: deps.operators }),
    deviceVerificationRoutes(deviceLimits, renderer, cookieNames(config).resume),
    interaction.router,
    accountHome({
      config,
      accounts: deps.accounts,
      accountService: deps.accountService,
      mfa: deps.mfa,
      appPasswords: deps.appPasswords,
      recoveryEmail: deps.recoveryEmail,
      audit: deps.audit,
      education: deps.education,
      clients: deps.clientStore,
      access: deps.access,
      clock: deps.clock,
      signinLog: deps.signinLog,
      sessions: deps.payloads,
      grants: deps.payloads,
      unitOfWork: (work, keep) => database.unitOfWork(work, keep),
      idv: deps.idv,
      idvFlow,
      csrf,
      renderer,
      clientSecret: async () => String((await clients.providerMetadata(ACCOUNT_CLIENT_ID))?.client_secret),
    }),
    recoveryRoutes({
      config,
      renderer,
      csrf,
      state: deps.interactionState,
      captcha: new Captcha(box.deriveKey('captcha'), config.captchaMaxNumber),
      throttle: deps.throttle,
      anonymousCap,
      accounts: deps.accounts,
      accountService: deps.accountService,
      recoveryEmail: deps.recoveryEmail,
      mfa: deps.mfa,
      audit: deps.audit,
      meter: deps.metrics,
      idvAvailable: Boolean(idvFlow),
    }),
    ...(idvFlow ? [idvFlow.routes()] : []),
    saml.router,
    consoleRoutes({
      config,
      accounts: deps.accounts,
      mfa: deps.mfa,
      clock: deps.clock,
      sessions: deps.payloads,
      unitOfWork: (work, keep) => database.unitOfWork(work, keep),
      csrf,
      renderer,
      clientSecret: async () => String((await clients.providerMetadata(CONSOLE_CLIENT_ID))?.client_secret),
      helpDesk: deps.helpDesk,
      operators: deps.operators,
      clients: deps.clientStore,
      importJobs: deps.importJobs,
      dashboard: deps.dashboard,
      state: deps.interactionState,
    }),
    adminApi({
      operators: deps.operators,
      helpDesk: deps.helpDesk,
      clients,
      rotateKeys,
      tokens: deps.tokens,
      audit: deps.audit,
      accountRules: deps.accountRules,
      revocations: deps.revocations,
      timeZone: config.timeZone,
      trustedEmailDomains: config.trustedEmailDomains,
      dashboard: deps.dashboard,
      unitOfWork: (work, keep) => database.unitOfWork(work, keep),
    }),
    scimApi({
      operators: deps.operators,
      helpDesk: deps.helpDesk,
      accounts: deps.accounts,
      clock: deps.clock,
      issuer: config.issuer,
      realm: config.realmSuffix,
      timeZone: config.timeZone,
      deleteGraceDays: config.scimDeleteGraceDays,
      unitOfWork: (work, keep) => database.unitOfWork(work, keep),
      lockSessionsOf: (accountId) => deps.payloads.lockSessionsOf(accountId),
    }),
  ];

  // Times everything below it, one histogram observation per request.
  app.use(deps.metrics.requestTimer());
  // First: everything after it, the access log included, reads the client's address as ctx.ip.
  app.use(clientAddressMiddleware(config));
  app.use(requestContext(logger));
  app.use(issuerHost(config.issuer));
  app.use(securityHeaders(config.production));
  app.use(requireHttps(config.production));
  app.use(metadataCache(() => holder!.provider, config.issuer));
  app.use(localeMiddleware());
  app.use(errorPages(renderer));
  // Before every route and the provider: bad characters are refused before anything is looked up or stored.
  const routes = new RouteTable(routers);
  app.use(inputGuard(renderer, surfaceByRoute(routes)));
  app.use(staticFiles());
  app.use(routes.middleware());
  app.use(protocolMethods());
  app.use(providerGate(database, renderer, () => holder!.provider));
  app.use(saml.afterSignOut);
  app.use(interaction.drawFirstStep);
  app.use(holder.middleware());

  // Named for the metrics (akamon_job_last_success_timestamp_seconds{job}).
  const sweeper = new Sweeper({
    expired_oidc_records: (n) => deps.payloads.deleteExpired(n),
    expired_interaction_state: (n) => deps.interactionState.deleteExpired(n),
    stale_throttle_counters: (n) => deps.throttle.deleteStale(n),
    old_totp_steps: (n) => deps.mfaStore.deleteOldSteps(n),
    old_otp_codes: (n) => deps.otpCodes.deleteOld(n),
    expired_saml_requests: (n) => samlRequests.deleteExpired(n),
    expired_saml_sessions: (n) => samlSessions.deleteExpired(n),
    import_secrets: (n) => deps.importJobs.wipeExpiredSecrets(n),
    // Not a deletion, but the same kind of bounded periodic batch: scheduled revocations that are due.
    scheduled_revocations: (n) => deps.revocations.applyDue(n),
    // Once a day (the first tick of the day on any node; a key lookup on the others): MFA adoption's snapshot.
    dashboard_snapshot: () => deps.dashboard.takeSnapshot(),
    // Notices by mail: record the occasions that came due (once, whichever node finds them), then send what is due.
    notice_occasions: (n) => deps.notices.findDue(n),
    notice_delivery: (n) => deps.notices.deliverDue(n),
    // Autovacuum's work, on the embedded database only (a server does its own).
    ...(database.kind === 'pglite' ? { embedded_vacuum: (n: number) => vacuumEmbedded(db, n) } : {}),
  });
  deps.metrics.watchJobs(sweeper);
  return { app, provider: () => holder!.provider, holder, clients, sweeper, rotateKeys, routes };
}
