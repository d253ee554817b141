import type Router from '@koa/router';
import type { Context } from 'koa';
import * as oidc from 'openid-client';
import type { AccountRow } from '../account/account.store.ts';
import { ACR_MFA } from '../mfa/assurance.ts';
import { ACCOUNT_CLIENT_ID } from './account-client.ts';
import type { AccountHomeDeps } from './account-home.ts';
import { FRESH_SIGNIN_SECONDS, HOME_SESSION_TTL_SECONDS } from '../config/defaults.ts';

const SESSION_SECONDS = HOME_SESSION_TTL_SECONDS;
export const FRESH_SECONDS = FRESH_SIGNIN_SECONDS;

/** `sid` is the ID token's: it names this sign-in within the provider session it came from. */
export type HomeSignIn = { account: AccountRow; acr: string; authTime: number; sid: string };
export type HomeSession = ReturnType<typeof homeSession>;

/**
 * The account home's own sign-in: a first-party relying party of Akamon itself (authorization
 * code + PKCE through openid-client), so it signs in exactly as every campus system does. Its
 * session is a signed cookie bound to the provider session it came from (the ID token's sid):
 * every request checks in the database that this sign-in is still part of a live provider session,
 * so whatever ends that session (a logout, "sign out everywhere", suspension, revocation, a reset
 * or reissued password) ends the account home too, on every device and node, with no check of its
 * own. The helpers here read it, check a page's POST, hold it live while a change is made, and ask
 * for a fresh second factor when a change needs one.
 */
export function homeSession(deps: AccountHomeDeps) {
  const { config } = deps;
  const secure = config.production;
  const cookie = (name: string) => (secure ? `__Host-${name}` : name);
  const redirectUri = `${config.issuer}/account/callback`;
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
      return oidc.discovery(new URL(config.issuer), ACCOUNT_CLIENT_ID, await deps.clientSecret(), undefined, options);
    })().catch((error) => {
      discovered = undefined;
      throw error;
    });
    return discovered;
  }

  // Path=/ because browsers accept a __Host- cookie only with it.
  const setCookie = (ctx: Context, name: string, value: string | null, maxAgeSeconds: number) =>
    ctx.cookies.set(cookie(name), value, { signed: true, httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: maxAgeSeconds * 1000, overwrite: true });

  /**
   * The signed-in person of the account home, the assurance of that sign-in and when it happened;
   * undefined once its provider session has ended, or the account is no longer active.
   */
  async function session(ctx: Context): Promise<HomeSignIn | undefined> {
    const raw = ctx.cookies.get(cookie('akamon_home'), { signed: true });
    const [accountId, expires, acr, authTime, sid] = raw?.split('|') ?? [];
    if (!accountId || !sid || !(Number(expires) > deps.clock.now().getTime())) return undefined;
    if (!(await deps.sessions.authorizationLive(accountId, ACCOUNT_CLIENT_ID, sid))) return undefined;
    const account = await deps.accounts.findById(accountId);
    const signedInAt = Number(expires) - SESSION_SECONDS * 1000;
    // A password changed on the security page since this page's sign-in ends it too (on every device).
    if (account?.status !== 'active' || new Date(account.password_set_at).getTime() > signedInAt) return undefined;
    return { account, acr: acr ?? '', authTime: Number(authTime) || 0, sid };
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
      async () => ((await deps.sessions.authorizationLive(current.account.id, ACCOUNT_CLIENT_ID, current.sid, { hold: true })) ? { made: await change() } : undefined),
      (result) => result !== undefined,
    );
    if (!outcome) {
      ctx.status = 303;
      ctx.redirect('/account/login');
    }
    return outcome?.made;
  }

  /**
   * Changes to how an account with MFA is protected need a second factor shown within the last
   * ten minutes; otherwise the person is sent through a fresh sign-in first (acr + max_age).
   * With `reauthenticate`, an account without MFA must also have entered its password that recently.
   */
  async function freshEnough(ctx: Context, current: HomeSignIn, back: string, options: { reauthenticate?: boolean } = {}): Promise<boolean> {
    const hasFactors = (await deps.mfa.factors(current.account.id)).length > 0;
    const recent = deps.clock.now().getTime() / 1000 - current.authTime <= FRESH_SECONDS;
    if (hasFactors ? current.acr === ACR_MFA && recent : !options.reauthenticate || recent) return true;
    ctx.status = 303;
    ctx.redirect(`/account/login?fresh=${hasFactors ? '1' : 'password'}&back=${encodeURIComponent(back)}`);
    return false;
  }

  const signedIn = async (ctx: Context) => (await session(ctx))?.account;

  /** A POST from the account home: a valid CSRF token and a live session, or the answer is sent. */
  async function postedBy(ctx: Context): Promise<HomeSignIn | undefined> {
    if (!deps.csrf.valid(ctx, (ctx.request.body as Record<string, unknown>)._csrf)) {
      deps.renderer.error(ctx, 'error.csrf', 403);
      return undefined;
    }
    const current = await session(ctx);
    if (!current) ctx.redirect('/account/login');
    return current;
  }

  /** GET /account/login, /account/callback and /account/logout. */
  function routes(router: Router): void {
    async function reachableConfiguration(ctx: Context): Promise<oidc.Configuration | undefined> {
      try {
        return await configuration();
      } catch (error) {
        ctx.state.log.error({ err: { name: (error as Error).name, message: (error as Error).message } }, 'account home cannot reach the issuer (set AKAMON_INTERNAL_URL?)');
        ctx.set('Retry-After', '30');
        deps.renderer.error(ctx, 'error.generic', 503);
        return undefined;
      }
    }

    router.get('/account/login', async (ctx) => {
      const discovered = await reachableConfiguration(ctx);
      if (!discovered) return;
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const back = typeof ctx.query.back === 'string' && /^\/account(\/[a-z/-]*)?$/.test(ctx.query.back) ? ctx.query.back : '/account';
      setCookie(ctx, 'akamon_home_flow', `${state}|${verifier}|${back}`, 600);
      const url = oidc.buildAuthorizationUrl(discovered, {
        redirect_uri: redirectUri,
        scope: 'openid profile email',
        state,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        ui_locales: ctx.state.locale,
        // Step-up for changes that need a second factor shown within the last ten minutes.
        ...(ctx.query.fresh === '1' ? { acr_values: ACR_MFA, max_age: String(FRESH_SECONDS) } : {}),
        // A first sign-in method: the password given within the last ten minutes, so that a session
        // alone (a borrowed or stolen cookie) cannot attach a factor of someone else's.
        ...(ctx.query.fresh === 'recent' ? { max_age: String(FRESH_SECONDS) } : {}),
        // Re-authentication of an account without MFA: the password again, whenever it was last given.
        ...(ctx.query.fresh === 'password' ? { prompt: 'login' } : {}),
        // Adding a sign-in method runs the enrolment step (after that step-up when there are factors).
        ...(ctx.query.add === '1' ? { akamon_add_factor: '1' } : {}),
        // The sid claim names this sign-in within the provider session: the cookie is bound to it.
        claims: JSON.stringify({ id_token: { sid: null } }),
      });
      ctx.redirect(url.href);
    });

    router.get('/account/callback', async (ctx) => {
      const [state, verifier, back] = ctx.cookies.get(cookie('akamon_home_flow'), { signed: true })?.split('|') ?? [];
      setCookie(ctx, 'akamon_home_flow', null, 0);
      if (!state || !verifier) return deps.renderer.error(ctx, 'error.expired', 400);
      const current = new URL(ctx.originalUrl, config.issuer);
      if (current.searchParams.has('error')) return ctx.redirect('/');
      const discovered = await reachableConfiguration(ctx);
      if (!discovered) return;
      let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
      try {
        tokens = await oidc.authorizationCodeGrant(discovered, current, { pkceCodeVerifier: verifier, expectedState: state });
      } catch (error) {
        ctx.state.log.warn({ err: { name: (error as Error).name, code: (error as { code?: string }).code } }, 'account home sign-in failed');
        return deps.renderer.error(ctx, 'error.expired', 400);
      }
      const claims = tokens.claims()!;
      if (typeof claims.sid !== 'string') {
        ctx.state.log.warn('account home sign-in without a sid claim');
        return deps.renderer.error(ctx, 'error.expired', 400);
      }
      setCookie(
        ctx,
        'akamon_home',
        `${claims.sub}|${deps.clock.now().getTime() + SESSION_SECONDS * 1000}|${String(claims.acr ?? '')}|${Number(claims.auth_time ?? 0)}|${claims.sid}|${tokens.id_token}`,
        SESSION_SECONDS,
      );
      ctx.redirect(back || '/account');
    });

    router.get('/account/logout', async (ctx) => {
      const idToken = ctx.cookies.get(cookie('akamon_home'), { signed: true })?.split('|')[5];
      setCookie(ctx, 'akamon_home', null, 0);
      const discovered = await reachableConfiguration(ctx);
      if (!discovered) return;
      // No post_logout_redirect_uri: the provider's own "You are signed out" page is the answer.
      const url = oidc.buildEndSessionUrl(discovered, idToken ? { id_token_hint: idToken } : {});
      ctx.redirect(url.href);
    });
  }

  return { cookie, setCookie, session, signedIn, postedBy, freshEnough, whileLive, routes };
}
