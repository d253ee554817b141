import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC, Session } from 'oidc-provider';
import { SIGN_IN_RESULT } from '../shared/sign-in-result.ts';

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

/** The provider's session, with the second Akamon keeps in it: when its sign-in happened. */
type AnchoredSession = Session & { signedInAt?: number };

/**
 * Teaches the provider's Session model to keep `signedInAt` (its payload is a fixed list of fields;
 * anything else is dropped at save). Run once, before the provider serves.
 */
export function keepSignInTime(provider: Provider) {
  const model = provider.Session as unknown as { IN_PAYLOAD: string[] };
  const fields = [...model.IN_PAYLOAD, 'signedInAt'];
  Object.defineProperty(model, 'IN_PAYLOAD', { configurable: true, get: () => fields });
}

/** When the session's person signed in: the anchor of the absolute lifetime. */
export function signedInAt(session: AnchoredSession): number | undefined {
  // Sessions saved before the anchor existed fall back on loginTs.
  return session.signedInAt ?? session.loginTs;
}

/**
 * The lifetime a signed-in session is saved with, each time it is used: the idle timeout from now,
 * but never past the absolute lifetime from the sign-in (`signedInAt`). A silent or single-sign-on
 * authorization never sets it, nor does a second factor, so using a session cannot stretch it past
 * its end. oidc-provider saves the session at every authorization with this (configuration
 * ttl.Session), and a session row past its expiry is never read again (adapter), so both limits
 * hold everywhere a session is looked up: authorizations, silent ones included, and tokens bound
 * to the session.
 */
export function sessionSeconds(limits: SessionLimits, signedIn: number | undefined, now = epochNow()): number {
  const left = (signedIn ?? now) + limits.absolute - now;
  // oidc-provider saves with a positive lifetime; a session read this request had time left.
  return Math.max(1, Math.min(limits.idle, left));
}

/**
 * The provider's ttl.Session: records the sign-in time when this request completes a sign-in, then
 * answers the lifetime. A session that holds no sign-in (a logout begun by someone signed out)
 * keeps only the logout's state until its confirmation.
 */
export function sessionTtl(limits: SessionLimits, anonymousSeconds: number) {
  return (ctx: KoaContextWithOIDC | undefined, session: Session): number => {
    const anchored = session as AnchoredSession;
    if (!anchored.accountId) return anonymousSeconds;
    const signIn = (ctx?.oidc?.result as { [SIGN_IN_RESULT]?: { at?: unknown } } | undefined)?.[SIGN_IN_RESULT];
    if (typeof signIn?.at === 'number') anchored.signedInAt = signIn.at;
    anchored.signedInAt = signedInAt(anchored);
    return sessionSeconds(limits, anchored.signedInAt);
  };
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
    const seconds = sessionSeconds(limits, signedInAt(session), now);
    await (provider.Session.adapter as unknown as ExtendableRows).extend(session.jti, now + seconds, seconds);
  };
}
