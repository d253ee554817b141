import { createSecretKey, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import compose from 'koa-compose';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type AdapterPayload, type ClientMetadata, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';
import { hmac } from '../crypto/tokens.ts';
import { cleanName } from '../shared/text.ts';
import { CsrfGuard } from '../http/csrf.ts';
import { formBody } from '../http/form-body.ts';
import { inputGuard, surfaceByRoute } from '../http/input-guard.ts';
import { RouteTable } from '../http/route-table.ts';
import { errorPages, languageSwitch, localeMiddleware, requestContext, securityHeaders } from '../http/middleware.ts';
import { Renderer } from '../http/renderer.ts';
import { staticFiles } from '../http/static-files.ts';

export interface DevIdvOptions {
  /** Refused when true: the stand-in provider never runs in production. */
  production: boolean;
  host: string;
  port: number;
  /** The host name in the issuer URL (the one browsers use); defaults to `host`. */
  publicHost?: string;
  clients: ClientMetadata[];
  logger: Logger;
}

export interface DevIdv {
  issuer: string;
  close(): Promise<void>;
}

const CARD_PATTERN = /^[A-Za-z0-9-]{4,32}$/;

/** oidc-provider's storage in a Map: this tool keeps nothing across restarts, and everything lives ten minutes. */
function memoryAdapter(): NonNullable<Configuration['adapter']> {
  const rows = new Map<string, { payload: AdapterPayload; expires: number }>();
  const live = (row: { expires: number } | undefined) => row !== undefined && row.expires > Date.now();
  return class {
    readonly #model: string;
    constructor(model: string) {
      this.#model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      if (rows.size > 10_000) for (const [key, row] of rows) if (!live(row)) rows.delete(key);
      rows.set(`${this.#model}:${id}`, { payload, expires: Date.now() + expiresIn * 1000 });
    }

    async find(id: string) {
      const row = rows.get(`${this.#model}:${id}`);
      return live(row) ? row!.payload : undefined;
    }

    async findByUid(uid: string) {
      for (const [key, row] of rows) if (key.startsWith(`${this.#model}:`) && row.payload.uid === uid && live(row)) return row.payload;
      return undefined;
    }

    async findByUserCode() {
      return undefined;
    }

    async consume(id: string) {
      const row = rows.get(`${this.#model}:${id}`);
      if (row) row.payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id: string) {
      rows.delete(`${this.#model}:${id}`);
    }

    async revokeByGrantId(grantId: string) {
      for (const [key, row] of rows) if (row.payload.grantId === grantId) rows.delete(key);
    }
  };
}

/**
 * A development stand-in for the national ID card app: a real OpenID Connect provider (oidc-provider,
 * code flow with PKCE, signed ID tokens) whose sign-in page asks for any card number and a name
 * instead of reading a card. Like the real one it returns a pairwise `sub` per relying party,
 * derived from the card number alone, and the name. State is in memory: it is for trying Akamon
 * locally and for tests, and refuses to start in production.
 */
export async function startDevIdv(options: DevIdvOptions): Promise<DevIdv> {
  if (options.production) throw new Error('the development identity provider cannot run in production');
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const issuer = `http://${options.publicHost ?? options.host}:${(server.address() as AddressInfo).port}`;
  const pairwiseKey = createSecretKey(randomBytes(32));
  // The provider's routes run inside this Koa app: both must sign cookies with the same keys.
  const cookieKeys = [randomBytes(32).toString('base64url')];
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  // The name each card number last signed in with; a new name shows a name mismatch downstream.
  const names = new Map<string, string>();

  // Its own cookie names: cookies ignore ports, and Akamon runs on the same host.
  const csrf = new CsrfGuard(createSecretKey(randomBytes(32)), false, 'devidv_csrf');
  const renderer = new Renderer(csrf);
  const provider = new Provider(issuer, {
    adapter: memoryAdapter(),
    ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    clients: options.clients.map((c) => ({ subject_type: 'pairwise', id_token_signed_response_alg: 'ES256', ...c })),
    jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'dev-idv' }] as never },
    cookies: { keys: cookieKeys, names: { session: 'devidv_session', interaction: 'devidv_interaction', resume: 'devidv_resume' } },
    claims: { openid: ['sub'], profile: ['name'] },
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    responseTypes: ['code'],
    subjectTypes: ['pairwise'],
    pairwiseIdentifier: (_ctx, accountId, client) => hmac(pairwiseKey, `${client.sectorIdentifier}|${accountId}`),
    features: { devInteractions: { enabled: false } },
    findAccount: (_ctx, card) => ({ accountId: card, claims: () => ({ sub: card, name: names.get(card) ?? '' }) }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError: (ctx, _out, error) => {
      ctx.state.log?.warn({ err: { message: (error as Error).message, description: (error as { error_description?: string }).error_description } }, 'dev-idv error');
      renderer.error(ctx as never, 'error.generic', (error as { statusCode?: number }).statusCode ?? 400);
    },
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
      grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
      await grant.save();
      return grant;
    },
  });

  const router = new Router();
  const page = (ctx: Koa.Context, uid: string, invalid: boolean, status = 200) => renderer.page(ctx, 'dev-idv', 'devidv.title', { action: `/interaction/${uid}/card`, invalid }, status);

  router.get('/lang', languageSwitch());
  router.get('/interaction/:uid', async (ctx) => {
    const { uid } = await provider.interactionDetails(ctx.req, ctx.res);
    page(ctx, uid, false);
  });
  router.post('/interaction/:uid/card', formBody, async (ctx) => {
    const { uid } = await provider.interactionDetails(ctx.req, ctx.res);
    const body = ctx.request.body as Record<string, string>;
    if (!csrf.valid(ctx, body._csrf)) return renderer.error(ctx, 'error.csrf', 403);
    const card = String(body.card ?? '').trim();
    const name = cleanName(String(body.name ?? ''), 100);
    if (!CARD_PATTERN.test(card) || !name) return page(ctx, uid, true, 400);
    names.set(card, name);
    const url = await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: card } });
    ctx.status = 303;
    ctx.redirect(url);
  });

  const app = new Koa();
  app.keys = cookieKeys;
  app.use(requestContext(options.logger.child({ component: 'dev-idv' })));
  app.use(securityHeaders(false));
  app.use(localeMiddleware());
  app.use(errorPages(renderer));
  const routes = new RouteTable([router]);
  app.use(inputGuard(renderer, surfaceByRoute(routes)));
  app.use(staticFiles());
  app.use(routes.middleware());
  app.use(compose(provider.middleware));
  server.on('request', app.callback());
  options.logger.warn({ issuer }, 'development identity provider running: it stands in for the national ID card app and must never be used in production');

  return {
    issuer,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
