/** Akamon's own account home, registered as a first-party client of Akamon itself. */
export const ACCOUNT_CLIENT_ID = 'akamon-account';
