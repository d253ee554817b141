import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

export interface SessionLimits {
  /** Seconds from the sign-in after which the session ends, however much it is used. */
  absolute: number;
  /** Seconds without use after which the session ends. */
  idle: number;
}

/** A stored row's expiry, moved in place (the Postgres adapter's `extend`). */
export interface ExtendableRows {
  extend(id: string, exp: number, expiresIn: number): Promise<void>;
}

const epochNow = () => Math.floor(Date.now() / 1000);

/**
 * The lifetime a signed-in session is saved with, each time it is used: the idle timeout from now,
 * but never past the absolute lifetime from the sign-in. The sign-in is the session's loginTs (the
 * ID token's auth_time): set when the person proves a password or a second factor, never by a
 * silent or single-sign-on authorization, so using a session cannot stretch it past its end.
 * oidc-provider saves the session at every authorization with this (configuration ttl.Session), and
 * a session row past its expiry is never read again (adapter), so both limits hold everywhere a
 * session is looked up: authorizations, silent ones included, and tokens bound to the session.
 */
export function sessionSeconds(limits: SessionLimits, loginTs: number | undefined, now = epochNow()): number {
  const left = (loginTs ?? now) + limits.absolute - now;
  // oidc-provider saves with a positive lifetime; a session read this request had time left.
  return Math.max(1, Math.min(limits.idle, left));
}

/**
 * Refreshing a token bound to the session is a use of the session as much as an authorization is
 * (the person is at the system that refreshes): the idle timeout starts again, never past the
 * absolute lifetime. Without this, a system that keeps its hourly access token fresh would lose
 * its refresh token at the idle timeout however busy the person is. The row is moved in place, so a
 * session that a sign-out ended or an authorization renamed meanwhile is not written back.
 */
export function refreshUsesSession(provider: Provider, limits: SessionLimits) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next();
    if (ctx.oidc?.route !== 'token' || ctx.oidc.params?.grant_type !== 'refresh_token' || ctx.status !== 200) return;
    const token = ctx.oidc.entities.RefreshToken;
    if (!token?.expiresWithSession || !token.sessionUid) return;
    const session = await provider.Session.findByUid(token.sessionUid);
    if (!session?.accountId) return;
    const now = epochNow();
    const seconds = sessionSeconds(limits, session.loginTs, now);
    await (provider.Session.adapter as unknown as ExtendableRows).extend(session.jti, now + seconds, seconds);
  };
}
