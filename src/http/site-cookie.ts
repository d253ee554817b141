import type { SetOption } from 'cookies';

/**
 * Akamon's own site-wide cookies (the sites' sessions, CSRF, flows, the account picker) share one
 * naming rule and one set of attributes. In production the name takes `__Host-`: browsers then keep
 * it only over HTTPS, with Path=/ and no Domain, so a sibling host cannot set or shadow it.
 */
export const siteCookieName = (name: string, production: boolean): string => (production ? `__Host-${name}` : name);

/** HttpOnly, SameSite=Lax, Path=/ (which `__Host-` needs), Secure in production; signed unless said. */
export function siteCookieOptions(production: boolean, options: { maxAgeSeconds?: number; signed?: boolean } = {}): SetOption {
  return {
    signed: options.signed ?? true,
    httpOnly: true,
    sameSite: 'lax',
    secure: production,
    path: '/',
    overwrite: true,
    ...(options.maxAgeSeconds === undefined ? {} : { maxAge: options.maxAgeSeconds * 1000 }),
  };
}
