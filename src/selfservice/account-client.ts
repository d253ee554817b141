import type { MessageKey } from '../i18n/en.ts';

/** Akamon's own account home, registered as a first-party client of Akamon itself. */
export const ACCOUNT_CLIENT_ID = 'akamon-account';

/** The operators' console, a first-party client like the account home. */
export const CONSOLE_CLIENT_ID = 'akamon-console';

/** A site of Akamon's own: its registration (names in both languages) and where its pages live. */
export interface FirstPartySite {
  clientId: string;
  /** /login, /callback and /logout are below it. */
  prefix: string;
  name: string;
  /** What Japanese pages call it (clientDisplayName reads it from the registration). */
  nameJa: string;
  /** How Akamon's own sentences name it ("You have signed out of your account page"). */
  ownName: MessageKey;
}

/** Registered (and kept up to date) by the server at every start (app.ts). */
export const FIRST_PARTY_SITES: readonly FirstPartySite[] = [
  { clientId: ACCOUNT_CLIENT_ID, prefix: '/account', name: 'Akamon account', nameJa: 'Akamon アカウント', ownName: 'logout.account_home' },
  { clientId: CONSOLE_CLIENT_ID, prefix: '/console', name: 'Akamon console', nameJa: 'Akamon 管理コンソール', ownName: 'logout.console' },
];

/** Clients the server registers and keeps itself: operators may not change or delete them. */
export const FIRST_PARTY_CLIENT_IDS: readonly string[] = FIRST_PARTY_SITES.map((site) => site.clientId);
