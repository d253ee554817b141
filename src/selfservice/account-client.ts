/** Akamon's own account home, registered as a first-party client of Akamon itself. */
export const ACCOUNT_CLIENT_ID = 'akamon-account';

/** The operators' console, a first-party client like the account home. */
export const CONSOLE_CLIENT_ID = 'akamon-console';

/** Clients the server registers and keeps itself: operators may not change or delete them. */
export const FIRST_PARTY_CLIENT_IDS: readonly string[] = [ACCOUNT_CLIENT_ID, CONSOLE_CLIENT_ID];
