import { cleanName } from '../shared/text.ts';
import { createPrivateKey } from 'node:crypto';
import * as oidc from 'openid-client';
import { importJWK, type JWK } from 'jose';
import type { IdvSettings } from '../config/config.ts';
import { IDV_UPSTREAM_TIMEOUT_SECONDS } from '../config/defaults.ts';

/** What Akamon keeps of an upstream sign-in: the pairwise identifier and the name, nothing else. */
export interface VerifiedIdentity {
  issuer: string;
  subject: string;
  name: string;
}

/** The values that tie an upstream answer to the request this browser started. */
export interface PendingCheck {
  state: string;
  nonce: string;
  verifier: string;
}

/** The upstream provider could not be reached or answered wrongly: try again later. */
export class UpstreamUnavailableError extends Error {
  override name = 'UpstreamUnavailableError';
}

/** The answer failed a check (state, nonce, signature, audience, expiry ...) or the person cancelled. */
export class VerificationFailedError extends Error {
  override name = 'VerificationFailedError';
  readonly cancelled: boolean;
  constructor(message: string, cancelled = false) {
    super(message);
    this.cancelled = cancelled;
  }
}

const ALGORITHM_OF: Record<string, string> = { rsa: 'RS256', 'rsa-pss': 'PS256', ed25519: 'EdDSA' };

/** A PEM (PKCS#8) or JWK private key, with the JWS algorithm its type implies. */
async function privateKeyJwt(text: string): Promise<oidc.ClientAuth> {
  const trimmed = text.trim();
  const parsed = trimmed.startsWith('{') ? (JSON.parse(trimmed) as JWK) : undefined;
  const key = parsed ? createPrivateKey({ key: parsed as never, format: 'jwk' }) : createPrivateKey(trimmed);
  const type = key.asymmetricKeyType ?? '';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const alg = parsed?.alg ?? (type === 'ec' ? { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' }[curve ?? ''] : ALGORITHM_OF[type]);
  if (!alg) throw new Error(`AKAMON_IDV_PRIVATE_KEY_FILE holds a ${type} key that cannot sign a client assertion`);
  const jwk = key.export({ format: 'jwk' }) as JWK;
  return oidc.PrivateKeyJwt({ key: (await importJWK(jwk, alg)) as oidc.CryptoKey, kid: parsed?.kid });
}

/**
 * Akamon as a relying party of the upstream identity provider: authorization code with PKCE S256,
 * state and nonce, through openid-client. The ID token's signature, issuer, audience, nonce and
 * expiry are all checked (non-repudiation checks on, so the signature is verified even though the
 * token came straight from the token endpoint).
 */
export class UpstreamIdp {
  readonly #settings: IdvSettings;
  readonly #redirectUri: string;
  #configuration: Promise<oidc.Configuration> | undefined;

  constructor(settings: IdvSettings, redirectUri: string) {
    this.#settings = settings;
    this.#redirectUri = redirectUri;
  }

  get issuer(): string {
    return this.#settings.issuer;
  }

  #configure(): Promise<oidc.Configuration> {
    this.#configuration ??= (async () => {
      const { auth } = this.#settings;
      const clientAuth = auth.kind === 'secret' ? oidc.ClientSecretBasic(auth.secret) : await privateKeyJwt(auth.privateKey);
      const execute = [oidc.enableNonRepudiationChecks, ...(this.#settings.issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [])];
      return oidc.discovery(new URL(this.#settings.issuer), this.#settings.clientId, undefined, clientAuth, { execute, timeout: IDV_UPSTREAM_TIMEOUT_SECONDS });
    })().catch((error: Error) => {
      this.#configuration = undefined; // try again at the next request
      throw new UpstreamUnavailableError(`the identity provider cannot be reached: ${error.message}`);
    });
    return this.#configuration;
  }

  /** Where to send the browser, and what to keep (server-side) to check the answer. */
  async begin(locale: string): Promise<{ url: string; check: PendingCheck }> {
    const configuration = await this.#configure();
    const check = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier() };
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: this.#redirectUri,
      scope: this.#settings.scopes,
      state: check.state,
      nonce: check.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(check.verifier),
      code_challenge_method: 'S256',
      ui_locales: locale,
    });
    return { url: url.href, check };
  }

  /** Redeems the code of the callback URL and returns the verified identity. */
  async complete(callbackUrl: URL, check: PendingCheck): Promise<VerifiedIdentity> {
    const configuration = await this.#configure();
    const error = callbackUrl.searchParams.get('error');
    if (error) throw new VerificationFailedError(`the identity provider answered ${error.slice(0, 64)}`, error === 'access_denied');
    let claims: oidc.IDToken | undefined;
    try {
      const tokens = await oidc.authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: check.verifier,
        expectedState: check.state,
        expectedNonce: check.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims();
    } catch (failure) {
      const { name, code, message } = failure as { name: string; code?: string; message: string };
      // A network failure is the provider's fault; everything else is an answer that failed a check.
      if (name === 'TypeError' || code === 'OAUTH_TIMEOUT' || /fetch failed|ECONNREFUSED/.test(message)) throw new UpstreamUnavailableError(message);
      throw new VerificationFailedError(`${code ?? name}: ${message}`);
    }
    const claimed = claims?.[this.#settings.nameClaim];
    if (!claims?.sub || typeof claimed !== 'string' || !claimed.trim()) throw new VerificationFailedError(`the ID token carries no ${this.#settings.nameClaim}`);
    // The provider's word is input like any other: the same rules as a name typed on a form.
    const name = cleanName(claimed, 200);
    if (!name) throw new VerificationFailedError(`the ID token's ${this.#settings.nameClaim} is not a name Akamon can keep`);
    return { issuer: this.#settings.issuer, subject: claims.sub, name };
  }
}

/** Names compare without regard to width, case and spaces (全角/半角, "Todai Hanako" / "TODAI  HANAKO"). */
export function sameName(a: string, b: string): boolean {
  const fold = (name: string) => name.normalize('NFKC').replace(/\s+/gu, '').toLowerCase();
  return fold(a) === fold(b);
}
