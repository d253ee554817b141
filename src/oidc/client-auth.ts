import type { Configuration, SigningAlgorithm } from 'oidc-provider';
import { AUTH_METHODS } from '../client/client-settings.ts';

/**
 * The algorithms a client may sign its assertion with: HMAC for client_secret_jwt (the secret
 * is long enough for HS512, see secretBytes), and for private_key_jwt the RSA, RSA-PSS, P-256 and
 * Ed25519 signatures relying-party libraries use ("EdDSA" is the older name of Ed25519, which
 * authlib and mod_auth_openidc still send).
 */
export const CLIENT_AUTH_ALGORITHMS: readonly SigningAlgorithm[] = ['HS256', 'HS384', 'HS512', 'RS256', 'PS256', 'ES256', 'Ed25519', 'EdDSA'];

/**
 * The provider's client authentication: exactly the methods a client can be registered with (the
 * settings table's), and the algorithms above. Discovery lists these and nothing else, for the
 * token, introspection and revocation endpoints alike. A used assertion's jti is remembered until
 * the assertion expires (the provider's ReplayDetection, stored by the adapter), so it is refused again.
 */
export const CLIENT_AUTHENTICATION = {
  clientAuthMethods: [...AUTH_METHODS],
  enabledJWA: { clientAuthSigningAlgValues: [...CLIENT_AUTH_ALGORITHMS] },
} satisfies Partial<Configuration>;

/**
 * The same for introspection and revocation, which the provider's discovery leaves out: without them
 * RFC 8414 lets a relying party assume client_secret_basic alone at the revocation endpoint.
 */
export const CLIENT_AUTH_DISCOVERY = Object.fromEntries(
  ['introspection', 'revocation'].flatMap((endpoint) => [
    [`${endpoint}_endpoint_auth_methods_supported`, [...AUTH_METHODS]],
    [`${endpoint}_endpoint_auth_signing_alg_values_supported`, [...CLIENT_AUTH_ALGORITHMS]],
  ]),
);
