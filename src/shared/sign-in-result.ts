/**
 * The interaction-result key of a step that proved who the person is from nothing (a password, an
 * identity verification), with the time it did (`{ at }`, epoch seconds; later steps of the same
 * interaction merge their results into it and keep it). Only such a result starts a session's
 * absolute lifetime (oidc/session-lifetime.ts): a second factor also signs the session in again
 * (loginTs, auth_time, for step-up freshness), but a factor the session's holder enrolled themselves
 * must not stretch the session (a stolen cookie kept alive by enrolling a factor of the thief's own
 * and verifying it again and again).
 */
export const SIGN_IN_RESULT = 'sign_in';

/** The part of a step's interaction result that says the person signed in now. */
export const signInResult = (now = Math.floor(Date.now() / 1000)) => ({ [SIGN_IN_RESULT]: { at: now } });
