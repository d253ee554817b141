import express, { type Express } from 'express';
import openid, { type ConfigParams } from 'express-openid-connect';

// A CommonJS package whose named exports Node cannot see from an ES module.
const { auth, requiresAuth } = openid;

/**
 * A relying party of Akamon in Node.js: Express with express-openid-connect 3.4, as
 * docs/relying-parties/express-openid-connect.md describes it. test/e2e/rp-express.test.ts runs it
 * as its own process (`node test/rp/express-app.ts`); an operator may start from it.
 *
 * As a program it takes its settings from the environment: AKAMON_ISSUER, CLIENT_ID,
 * CLIENT_SECRET, APP_URL (where it is reached; it listens on that port of 127.0.0.1) and
 * SESSION_SECRET.
 *
 * Routes: /login, /callback, /logout and /backchannel-logout are express-openid-connect's; / answers
 * whether the person is signed in, /profile their claims from userinfo, POST /refresh refreshes the
 * access token, /signed-out is where Akamon returns after a logout.
 */

export interface ExpressAppOptions {
  /** The issuer, exactly as discovery states it (https://id.example.ac.jp). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Where this app is reached (https://portal.example.ac.jp). */
  baseURL: string;
  /** Encrypts the session cookie (at least 32 random characters). */
  secret: string;
  /** Where logout marks from back-channel logout are kept: every instance of the app must see the same store. */
  logoutStore: NonNullable<Exclude<ConfigParams['backchannelLogout'], boolean>>['store'];
}

/**
 * Logout marks in this process's memory, in express-session's store interface. Enough for one
 * process; several instances of the app share a real store (connect-redis and the like).
 */
export function memoryStore(): ExpressAppOptions['logoutStore'] {
  const entries = new Map<string, unknown>();
  return {
    get: async (key: string) => entries.get(key),
    set: async (key: string, value: unknown) => void entries.set(key, value),
    destroy: async (key: string) => void entries.delete(key),
  };
}

/** express-openid-connect's settings for Akamon; `overrides` only for the test of the defaults' pitfall. */
export function akamonSettings(options: ExpressAppOptions, overrides: Partial<ConfigParams> = {}): ConfigParams {
  return {
    issuerBaseURL: options.issuer,
    baseURL: options.baseURL,
    clientID: options.clientId,
    clientSecret: options.clientSecret,
    secret: options.secret,
    // The default is response_type=id_token with form_post, which Akamon refuses
    // (unsupported_response_type): ask for the code flow. With `code` the library adds PKCE S256.
    authorizationParams: { response_type: 'code', scope: 'openid profile email' },
    clientAuthMethod: 'client_secret_basic',
    authRequired: false,
    // Without it, /logout ends only the app's session and the next /login signs in silently again.
    idpLogout: true,
    routes: { postLogoutRedirect: '/signed-out' },
    // The library's defaults are a day unused and a week in all; Akamon's sign-in session ends
    // after 2 hours unused and 8 hours in all (AKAMON_SESSION_IDLE_SECONDS, AKAMON_SESSION_TTL_SECONDS).
    session: { rollingDuration: 2 * 3600, absoluteDuration: 8 * 3600 },
    backchannelLogout: { store: options.logoutStore },
    // No usage reports to the library's vendor.
    enableTelemetry: false,
    ...overrides,
  };
}

export function createExpressApp(options: ExpressAppOptions, overrides: Partial<ConfigParams> = {}): Express {
  const app = express();
  app.use(auth(akamonSettings(options, overrides)));

  app.get('/', (req, res) => {
    res.json(req.oidc.isAuthenticated() ? { signed_in: true, id_token_claims: req.oidc.idTokenClaims } : { signed_in: false });
  });

  // Userinfo: the claims as the account is now (the ID token's are as of the sign-in).
  app.get('/profile', requiresAuth(), async (req, res) => {
    res.json(await req.oidc.fetchUserInfo());
  });

  app.post('/refresh', requiresAuth(), async (req, res) => {
    const before = req.oidc.accessToken!.access_token;
    try {
      // The new tokens (Akamon rotates the refresh token) go into the session.
      const refreshed = await req.oidc.accessToken!.refresh();
      res.json({ refreshed: refreshed.access_token !== before });
    } catch (error) {
      // invalid_grant: the Akamon session ended; the person signs in again.
      res.status(401).json({ error: (error as { error?: string }).error ?? 'refresh_failed' });
    }
  });

  app.get('/signed-out', (_req, res) => {
    res.json({ signed_out: true });
  });

  // An error response from Akamon (access_denied when the person left or a rule of this system
  // refused the account) reaches the callback as an error: answer it instead of a stack trace.
  app.use((error: { status?: number; error?: string; error_description?: string; message: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const status = error.status ?? 500;
    res.status(status).json({ error: error.error ?? 'server_error', error_description: error.error_description ?? (status < 500 ? error.message : 'the sign-in could not be completed') });
  });
  return app;
}

if (import.meta.main) {
  const env = (name: string): string => {
    const value = process.env[name];
    if (value) return value;
    console.error(`${name} is not set`);
    process.exit(2);
  };
  const baseURL = env('APP_URL');
  // EXPRESS_OIDC_OVERRIDES (JSON) replaces settings: the test shows with it what the library's defaults do.
  const overrides = JSON.parse(process.env.EXPRESS_OIDC_OVERRIDES ?? '{}') as Partial<ConfigParams>;
  const options = { issuer: env('AKAMON_ISSUER'), clientId: env('CLIENT_ID'), clientSecret: env('CLIENT_SECRET'), baseURL, secret: env('SESSION_SECRET'), logoutStore: memoryStore() };
  createExpressApp(options, overrides).listen(Number(new URL(baseURL).port), '127.0.0.1');
}
