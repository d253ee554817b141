import type { KoaContextWithOIDC } from 'oidc-provider';

/** The parts of any of the provider's tokens that say how the sign-in behind it went. */
interface TokenLike {
  amr?: string[] | undefined;
  extra?: Record<string, unknown> | undefined;
}

/**
 * The methods (amr) the sign-in behind a token used. Codes, device codes and refresh tokens carry them
 * (oidc-provider keeps amr on both); access tokens carry them in their extra claims (below).
 */
export function signInMethods(token: object): string[] | undefined {
  // Any of the provider's token kinds may be handed in; those without these fields have no amr.
  const { amr: own, extra } = token as TokenLike;
  const amr = own ?? extra?.amr;
  return Array.isArray(amr) ? amr.filter((m): m is string => typeof m === 'string') : undefined;
}

/**
 * The provider's extraTokenClaims: an access token carries the amr of the sign-in it stands on,
 * taken from the code, device code or refresh token it was exchanged for (the password grant sets its own), so
 * that each later use can apply the access rules' MFA demand to it. Introspection shows it too.
 */
export function accessTokenClaims(ctx: KoaContextWithOIDC | undefined, token: TokenLike): { amr: string[] } | undefined {
  const entities = ctx?.oidc?.entities;
  const amr = signInMethods(token) ?? signInMethods(entities?.AuthorizationCode ?? entities?.DeviceCode ?? entities?.RefreshToken ?? {});
  return amr ? { amr } : undefined;
}
