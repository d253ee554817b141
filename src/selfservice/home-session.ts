import type Router from '@koa/router';
import type { Context } from 'koa';
import * as oidc from 'openid-client';
import type { AccountRow, AccountStore } from '../account/account.store.ts';
import type { Config } from '../config/config.ts';
import type { Database } from '../db/database.ts';
import type { CsrfGuard } from '../http/csrf.ts';
import type { Renderer } from '../http/renderer.ts';
import { formBody } from '../http/form-body.ts';
import type { MfaService } from '../mfa/mfa.service.ts';
import type { Clock } from '../shared/clock.ts';
import { ACR_MFA } from '../mfa/assurance.ts';
import { ACCOUNT_CLIENT_ID } from './account-client.ts';
import { DATABASE_RETRY_AFTER_SECONDS, FRESH_SIGNIN_SECONDS, HOME_SESSION_TTL_SECONDS } from '../config/defaults.ts';
import { DatabaseUnavailableError } from '../shared/errors.ts';
import { siteCookieName, siteCookieOptions } from '../http/site-cookie.ts';

/** The token endpoint answered 503 (openid-client's ClientError holds the response as its cause): worth a retry. */
function providerUnavailable(error: unknown): boolean {
  const answer = (error as { cause?: unknown }).cause;
  return answer instanceof Response && answer.status === 503;
}

export const FRESH_SECONDS = FRESH_SIGNIN_SECONDS;

/** `sid` is the ID token's: it names this sign-in within the provider session it came from. `amr`: the methods it showed. */
export type HomeSignIn = { account: AccountRow; acr: string; authTime: number; sid: string; amr: string[] };
export type HomeSession = ReturnType<typeof homeSession>;

/** What a first-party site's sign-in needs from the app. */
export interface SiteSessionDeps {
  config: Config;
  accounts: AccountStore;
  mfa: Pick<MfaService, 'factors'>;
  clock: Clock;
  /** The provider's sessions: whether one sign-in in them is still live (oidc-payload.store.ts). */
  sessions: { authorizationLive(accountId: string, clientId: string, sid: string, options?: { hold?: boolean }): Promise<boolean> };
  /** One transaction for a change and the check that its session is live (Database#unitOfWork). */
  unitOfWork: Database['unitOfWork'];
  csrf: CsrfGuard;
  renderer: Renderer;
  /** The site's own client secret, as registered. */
  clientSecret: () => Promise<string>;
}

/** One of Akamon's own sites that signs in through Akamon (the account home, the console). */
export interface FirstPartySite {
  clientId: string;
  /** Where its pages live: /login, /callback and /logout are below it. */
  prefix: string;
  /** The session cookie's name; the sign-in in progress is `<name>_flow`. */
  cookieName: string;
  /** How long a sign-in lasts, counted from the sign-in (absolute, never extended). */
  sessionSeconds: number;
  /** The paths a sign-in may return to (`back`), besides the prefix itself. */
  back: RegExp;
  /** Parameters of the authorization request besides the protocol's own, from the login URL's query. */
  authorizationParams(query: Context['query']): Record<string, string>;
  /**
   * Looks at a completed sign-in before its cookie is set: false when it is not good enough for the site
   * and the answer was sent.
   */
  accept?(ctx: Context, claims: oidc.IDToken): Promise<boolean>;
}

/** The account home (/account): the site this module was first written for. */
export const ACCOUNT_HOME_SITE: FirstPartySite = {
  clientId: ACCOUNT_CLIENT_ID,
  prefix: '/account',
  cookieName: 'akamon_home',
  sessionSeconds: HOME_SESSION_TTL_SECONDS,
  back: /^\/account(\/[a-z/-]*)?$/,
  authorizationParams: (query) => ({
    // Step-up for changes that need a second factor shown within the last ten minutes.
    ...(query.fresh === '1' ? { acr_values: ACR_MFA, max_age: String(FRESH_SECONDS) } : {}),
    // A first sign-in method: the password given within the last ten minutes, so that a session
    // alone (a borrowed or stolen cookie) cannot attach a factor of someone else's.
    ...(query.fresh === 'recent' ? { max_age: String(FRESH_SECONDS) } : {}),
    // Re-authentication of an account without MFA: the password again, whenever it was last given.
    ...(query.fresh === 'password' ? { prompt: 'login' } : {}),
    // Adding a sign-in method runs the enrolment step (after that step-up when there are factors).
    ...(query.add === '1' ? { akamon_add_factor: '1' } : {}),
  }),
};

/** Names which of Akamon's own sites the browser signed out of, for the provider's "You are signed out" page. */
const LEFT_SITE_COOKIE = 'akamon_left_site';
/** Outlives the provider's "Sign out?" question by far; taken by the first page that reads it. */
const LEFT_SITE_SECONDS = 600;

/**
 * The client id of the first-party site this browser just signed out of, taken (read once): after a
 * full sign-out the provider no longer names the client, and "Sign in again" should lead back there.
 */
export function takeSiteSignedOutOf(config: Config) {
  const name = siteCookieName(LEFT_SITE_COOKIE, config.production);
  return (ctx: Context): string | undefined => {
    const clientId = ctx.cookies.get(name, { signed: true });
    if (clientId) ctx.cookies.set(name, null, siteCookieOptions(config.production));
    return clientId || undefined;
  };
}

/**
 * The sign-in of one of Akamon's own sites (`site`; the account home unless named): a first-party
 * relying party of Akamon itself (authorization code + PKCE through openid-client), so it signs in
 * exactly as every campus system does. Its
 * session is a signed cookie bound to the provider session it came from (the ID token's sid):
 * every request checks in the database that this sign-in is still part of a live provider session,
 * so whatever ends that session (a logout, "sign out everywhere", suspension, revocation, a reset
 * or reissued password) ends the account home too, on every device and node, with no check of its
 * own. The helpers here read it, check a page's POST, hold it live while a change is made, and ask
 * for a fresh second factor when a change needs one.
 */
export function homeSession(deps: SiteSessionDeps, site: FirstPartySite = ACCOUNT_HOME_SITE) {
  const { config } = deps;
  const { clientId, prefix, sessionSeconds } = site;
  const secure = config.production;
  const cookie = (name: string) => siteCookieName(name, secure);
  const redirectUri = `${config.issuer}${prefix}/callback`;
  let discovered: Promise<oidc.Configuration> | undefined;

  // Inside a container the public issuer may not be reachable; AKAMON_INTERNAL_URL says where it
  // is. The forwarded headers make Akamon answer as it does through the TLS proxy (production
  // trusts them), so discovery still names the public endpoints.
  const issuerUrl = new URL(config.issuer);
  const fetchVia: oidc.CustomFetch | undefined = config.internalUrl
    ? (url, options) =>
        fetch(url.replace(config.issuer, config.internalUrl!), {
          ...options,
          headers: { ...options.headers, 'x-forwarded-proto': issuerUrl.protocol.slice(0, -1), 'x-forwarded-host': issuerUrl.host },
        })
    : undefined;

  function configuration(): Promise<oidc.Configuration> {
    discovered ??= (async () => {
      const options: oidc.DiscoveryRequestOptions = {
        execute: config.issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
        ...(fetchVia ? { [oidc.customFetch]: fetchVia } : {}),
      };
      return oidc.discovery(new URL(config.issuer), clientId, await deps.clientSecret(), undefined, options);
    })().catch((error) => {
      discovered = undefined;
      throw error;
    });
    return discovered;
  }

  const setCookie = (ctx: Context, name: string, value: string | null, maxAgeSeconds: number) => ctx.cookies.set(cookie(name), value, siteCookieOptions(secure, { maxAgeSeconds }));

  /**
   * The signed-in person of the site, the assurance of that sign-in and when it happened;
   * undefined once its provider session has ended, or the account is no longer active.
   */
  async function session(ctx: Context): Promise<HomeSignIn | undefined> {
    const raw = ctx.cookies.get(cookie(site.cookieName), { signed: true });
    const [accountId, expires, acr, authTime, sid, , amr] = raw?.split('|') ?? [];
    if (!accountId || !sid || !(Number(expires) > deps.clock.now().getTime())) return undefined;
    if (!(await deps.sessions.authorizationLive(accountId, clientId, sid))) return undefined;
    const account = await deps.accounts.findById(accountId);
    const signedInAt = Number(expires) - sessionSeconds * 1000;
    // A password changed on the security page since this page's sign-in ends it too (on every device).
    if (account?.status !== 'active' || new Date(account.password_set_at).getTime() > signedInAt) return undefined;
    return { account, acr: acr ?? '', authTime: Number(authTime) || 0, sid, amr: amr ? amr.split(',') : [] };
  }

  /**
   * Makes a change for the signed-in person (`current`, from postedBy) while its session is held
   * live: in one transaction that first finds its provider session and locks it, so a sign-out
   * anywhere either came first (nothing is changed, and the person is sent to sign in) or waits
   * until the change is made. Checked at the moment of the change, not when the page was loaded.
   * Returns what `change` returned (never undefined), or undefined when the answer (a redirect) was sent.
   */
  async function whileLive<T extends NonNullable<unknown> | null>(ctx: Context, current: HomeSignIn, change: () => Promise<T>): Promise<T | undefined> {
    const outcome = await deps.unitOfWork(
      async () => ((await deps.sessions.authorizationLive(current.account.id, clientId, current.sid, { hold: true })) ? { made: await change() } : undefined),
      (result) => result !== undefined,
    );
    if (!outcome) {
      ctx.status = 303;
      ctx.redirect(`${prefix}/login`);
    }
    return outcome?.made;
  }

  /**
   * Changes to how an account is protected (its sign-in methods, recovery address, app passwords,
   * ID-card link) need proof given within the last ten minutes: a second factor when the account
   * has one, else the password. Otherwise the person is sent through a fresh sign-in first (acr +
   * max_age): whoever holds a session cookie must not be able to add a way in of their own.
   */
  async function freshEnough(ctx: Context, current: HomeSignIn, back: string): Promise<boolean> {
    const hasFactors = (await deps.mfa.factors(current.account.id)).length > 0;
    const recent = deps.clock.now().getTime() / 1000 - current.authTime <= FRESH_SECONDS;
    if (recent && (!hasFactors || current.acr === ACR_MFA)) return true;
    ctx.status = 303;
    ctx.redirect(`${prefix}/login?fresh=${hasFactors ? '1' : 'password'}&back=${encodeURIComponent(back)}`);
    return false;
  }

  const signedIn = async (ctx: Context) => (await session(ctx))?.account;

  /** A POST from the site: a valid CSRF token and a live session, or the answer is sent. */
  async function postedBy(ctx: Context): Promise<HomeSignIn | undefined> {
    if (!deps.csrf.valid(ctx, (ctx.request.body as Record<string, unknown>)._csrf)) {
      deps.renderer.error(ctx, 'error.csrf', 403);
      return undefined;
    }
    const current = await session(ctx);
    if (!current) ctx.redirect(`${prefix}/login`);
    return current;
  }

  /** GET <prefix>/login and <prefix>/callback, POST <prefix>/logout. */
  function routes(router: Router): void {
    async function reachableConfiguration(ctx: Context): Promise<oidc.Configuration | undefined> {
      try {
        return await configuration();
      } catch (error) {
        ctx.state.log.error({ err: { name: (error as Error).name, message: (error as Error).message } }, `${prefix} cannot reach the issuer (set AKAMON_INTERNAL_URL?)`);
        ctx.set('Retry-After', '30');
        deps.renderer.error(ctx, 'error.generic', 503);
        return undefined;
      }
    }

    router.get(`${prefix}/login`, async (ctx) => {
      const discovered = await reachableConfiguration(ctx);
      if (!discovered) return;
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const back = typeof ctx.query.back === 'string' && site.back.test(ctx.query.back) ? ctx.query.back : prefix;
      setCookie(ctx, `${site.cookieName}_flow`, `${state}|${verifier}|${back}`, 600);
      const url = oidc.buildAuthorizationUrl(discovered, {
        redirect_uri: redirectUri,
        scope: 'openid profile email',
        state,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        ui_locales: ctx.state.locale,
        ...site.authorizationParams(ctx.query),
        // The sid claim names this sign-in within the provider session: the cookie is bound to it.
        claims: JSON.stringify({ id_token: { sid: null } }),
      });
      ctx.redirect(url.href);
    });

    router.get(`${prefix}/callback`, async (ctx) => {
      const [state, verifier, back] = ctx.cookies.get(cookie(`${site.cookieName}_flow`), { signed: true })?.split('|') ?? [];
      if (!state || !verifier) return deps.renderer.error(ctx, 'error.expired', 400);
      const current = new URL(ctx.originalUrl, config.issuer);
      const endFlow = () => setCookie(ctx, `${site.cookieName}_flow`, null, 0);
      if (current.searchParams.has('error')) {
        endFlow();
        // Left halfway (a step-up, a method being added): back where the person was, if still signed in here.
        return ctx.redirect((await session(ctx)) ? back || prefix : '/');
      }
      const discovered = await reachableConfiguration(ctx);
      if (!discovered) return;
      let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
      try {
        tokens = await oidc.authorizationCodeGrant(discovered, current, { pkceCodeVerifier: verifier, expectedState: state });
      } catch (error) {
        ctx.state.log.warn({ err: { name: (error as Error).name, code: (error as { code?: string }).code } }, `${prefix} sign-in failed`);
        // The provider could not redeem the code just now (its database away): the flow stays, so
        // that loading this address again finishes the sign-in.
        if (providerUnavailable(error)) return deps.renderer.retryLater(ctx, new DatabaseUnavailableError(error, DATABASE_RETRY_AFTER_SECONDS));
        endFlow();
        return deps.renderer.error(ctx, 'error.expired', 400);
      }
      endFlow();
      const claims = tokens.claims()!;
      if (typeof claims.sid !== 'string') {
        ctx.state.log.warn(`${prefix} sign-in without a sid claim`);
        return deps.renderer.error(ctx, 'error.expired', 400);
      }
      if (site.accept && !(await site.accept(ctx, claims))) return;
      const amr = Array.isArray(claims.amr) ? claims.amr.join(',') : '';
      setCookie(
        ctx,
        site.cookieName,
        `${claims.sub}|${deps.clock.now().getTime() + sessionSeconds * 1000}|${String(claims.acr ?? '')}|${Number(claims.auth_time ?? 0)}|${claims.sid}|${tokens.id_token}|${amr}`,
        sessionSeconds,
      );
      ctx.redirect(back || prefix);
    });

    // A sign-out is a POST with the form's CSRF token: a link on another site must not end it. A
    // GET (an old bookmark) changes nothing and leads to the page with the sign-out button.
    router.get(`${prefix}/logout`, (ctx) => {
      ctx.status = 303;
      ctx.redirect(prefix);
    });
    router.post(`${prefix}/logout`, formBody, async (ctx) => {
      if (!deps.csrf.valid(ctx, (ctx.request.body as Record<string, unknown> | undefined)?._csrf)) return deps.renderer.error(ctx, 'error.csrf', 403);
      const idToken = ctx.cookies.get(cookie(site.cookieName), { signed: true })?.split('|')[5];
      setCookie(ctx, site.cookieName, null, 0);
      setCookie(ctx, LEFT_SITE_COOKIE, clientId, LEFT_SITE_SECONDS);
      const discovered = await reachableConfiguration(ctx);
      if (!discovered) return;
      // No post_logout_redirect_uri: the provider's own "You are signed out" page is the answer.
      const url = oidc.buildEndSessionUrl(discovered, idToken ? { id_token_hint: idToken } : {});
      ctx.status = 303;
      ctx.redirect(url.href);
    });
  }

  return { cookie, setCookie, session, signedIn, postedBy, freshEnough, whileLive, routes };
}
