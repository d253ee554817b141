import { text } from 'node:stream/consumers';
import argon2 from 'argon2';
import type { Context, Next } from 'koa';
import Provider, { type Configuration, type FindAccount } from 'oidc-provider';
import { loadConfig } from '../../src/config/config.ts';
import { openConfiguredDatabase } from '../../src/deps.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { SecretBox } from '../../src/crypto/secret-box.ts';
import { ensureKeys, loadKeyMaterial } from '../../src/oidc/keys.ts';
import { postgresAdapter } from '../../src/oidc/adapter.ts';
import { ClientService } from '../../src/client/client.service.ts';
import { CLIENT_NAME_JA } from '../../src/client/client-settings.ts';
import { ClientStore } from '../../src/client/client.store.ts';
import { Metrics } from '../../src/metrics/prometheus.ts';
import { startMetricsServer } from '../../src/metrics/metrics-route.ts';
import { inRequestMemo } from '../../src/shared/request-memo.ts';
import { ConcurrencyLimiter } from '../../src/shared/concurrency-limiter.ts';

// The bench's baseline (issue 15): oidc-provider 9 on Koa with Akamon's adapter, keys and client
// rows, on the database the bench seeded, and none of Akamon's steps. It reads Akamon's
// environment (PORT, AKAMON_ISSUER, AKAMON_SECRET, DATABASE_URL or AKAMON_DATA_DIR,
// AKAMON_METRICS_PORT), serves the same endpoints at the same paths, and signs in with one page:
// user name and password, checked against the account's argon2id hash, then login and consent in
// one step, as oidc-provider's own minimal example does. Nothing here is for production.

const config = loadConfig();
const logger = createLogger(config.logLevel);
const database = await openConfiguredDatabase(config, logger);
const { db } = database;
const box = new SecretBox(config.secret!);
// Akamon's keys as they are in the database, made as Akamon makes them if there are none yet (the
// copy of a PGlite directory seeded before Akamon's first start); RS256 signs ID tokens, as in Akamon.
await ensureKeys(db, box);
const keys = await loadKeyMaterial(db, box, { propagationSeconds: 0, retiredGraceSeconds: config.ttl.idToken });
// The clients the bench registered with Akamon, read from the `client` table as Akamon reads them.
const clients = new ClientService({
  store: new ClientStore(db),
  box,
  validate: async () => undefined,
  allowHttpRedirects: true,
  samlContinueUri: `${config.issuer}/saml/continue`,
  timeZone: config.timeZone,
});

// As many hashes at once as Akamon and the argon2 bound run (AKAMON_HASH_CONCURRENCY): with more,
// argon2's memory passes crowd each other out of the caches and each verification costs more CPU.
const hashing = new ConcurrencyLimiter(config.hashConcurrency, config.hashQueueLimit);

/** The account's claims of the bench's scopes, from its row: one read per call. */
const findAccount: FindAccount = async (_ctx, id) => {
  const account = await db.selectFrom('account').select(['id', 'common_id', 'name', 'email']).where('id', '=', id).executeTakeFirst();
  if (!account) return undefined;
  return {
    accountId: account.id,
    claims: () => ({ sub: account.id, name: account.name, preferred_username: account.common_id, email: account.email ?? undefined }),
  };
};

const configuration: Configuration = {
  adapter: postgresAdapter(db, async (id) => (await clients.providerMetadata(id)) as never, config.tokenRetryGraceSeconds),
  clients: [],
  findAccount,
  jwks: keys.jwks as Configuration['jwks'],
  cookies: { keys: keys.cookieSignatures },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'] },
  extraClientMetadata: { properties: ['first_party', CLIENT_NAME_JA] },
  responseTypes: ['code'],
  pkce: { required: () => true },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // As Akamon: refresh tokens for every client allowed the grant, rotated at each use; opaque access tokens.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    userinfo: { enabled: true },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
  },
  // Lifetimes are the provider's defaults: they change nothing of what an operation costs.
};
const provider = new Provider(config.issuer, configuration);

// The uid is the provider's own (URL-safe characters) and the message a fixed text: nothing to escape.
const page = (uid: string, message = '') =>
  `<!doctype html><title>Sign in</title><p>${message}</p><form method="post" action="/interaction/${uid}/login"><input name="login" autocomplete="username"><input type="password" name="password" autocomplete="current-password"><button>Sign in</button></form>`;

/** The login page, and its POST: the password checked, then login and a grant of the requested scopes at once. */
async function interactions(ctx: Context, next: Next): Promise<void> {
  const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(ctx.path);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (ctx.method === 'GET' && !match[2]) {
    ctx.type = 'html';
    ctx.body = page(details.uid);
    return;
  }
  if (ctx.method !== 'POST' || !match[2]) return next();
  const form = new URLSearchParams(await text(ctx.req));
  const account = await db
    .selectFrom('account')
    .select(['id', 'password_hash'])
    .where('common_id', '=', form.get('login') ?? '')
    .executeTakeFirst();
  if (!account || !(await hashing.run(() => argon2.verify(account.password_hash, form.get('password') ?? '')))) {
    ctx.status = 401;
    ctx.type = 'html';
    ctx.body = page(details.uid, 'Wrong user name or password.');
    return;
  }
  const grant = new provider.Grant({ accountId: account.id, clientId: String(details.params.client_id) });
  grant.addOIDCScope(String(details.params.scope));
  const grantId = await grant.save();
  const redirectTo = await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: account.id }, consent: { grantId } }, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(redirectTo);
}

// The adapter's per-request reads (a token's grant and session come along with it) need the
// request scope Akamon gives every request.
provider.use((_ctx, next) => inRequestMemo(next));
provider.use(interactions);

if (config.metrics) {
  // Akamon's metrics for its database handle alone: akamon_db_queries_total, read by the bench.
  const metrics = new Metrics();
  metrics.watchDatabase(() => database.stats());
  await startMetricsServer(metrics, config.metrics.port, config.metrics.host);
}
provider.listen(config.port, config.listenHost, () => {
  logger.info({ issuer: config.issuer, database: database.kind, readyMs: Math.round(process.uptime() * 1000) }, 'baseline ready');
});
process.once('SIGTERM', () => {
  void database.close().finally(() => process.exit(0));
});
