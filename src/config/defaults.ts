/**
 * Akamon's security numbers: every lifetime, cap, lock time, timeout and rate, each with what it
 * bounds and why it has this value. Those an operator may change are the defaults of their AKAMON_*
 * variables (src/config/config.ts, README "Configuration"); the others are fixed here. README
 * "Security defaults" lists them all, and test/unit/defaults.test.ts keeps that list true.
 *
 * Guessing limits read: `free` failures, then each failure locks for a time doubling from
 * `baseSeconds` up to `maxSeconds`; `hardStop` failures in a row lock until an operator clears it;
 * `forgetAfterSeconds` after the last failure, the count starts again (see src/throttle).
 */

// Guessing and flooding limits, counted in the database so they hold across nodes.

/** Password guesses per Common ID: reaching 100 failures in a row (NIST SP 800-63B-4's ceiling) takes days; then only an operator unlocks. */
export const PASSWORD_THROTTLE_PER_ACCOUNT = Object.freeze({ free: 5, baseSeconds: 30, maxSeconds: 3600, hardStop: 100 });
/** Password guesses per source address: generous, since a whole campus can sit behind one NAT address. */
export const PASSWORD_THROTTLE_PER_ADDRESS = Object.freeze({ free: 30, baseSeconds: 10, maxSeconds: 900, forgetAfterSeconds: 3600 });
/** A guess reserved by a request that died (a node crashed mid-check) stops counting after this: far longer than a hash takes. */
export const THROTTLE_RESERVATION_SECONDS = 30;
/** Wrong second-factor codes per method and account: 5 tries of a 6-digit code, then waits; 100 in a row need an operator. */
export const SECOND_FACTOR_THROTTLE = Object.freeze({ free: 5, baseSeconds: 60, maxSeconds: 900, hardStop: 100 });
/** Codes sent by SMS, voice or email, per account and per destination: nobody can be flooded with messages, nor the university billed. */
export const CODE_SEND_THROTTLE = Object.freeze({ free: 3, baseSeconds: 60, maxSeconds: 3600, forgetAfterSeconds: 3600 });
/** Password-reset starts per source address: each may send a mail. */
export const RECOVERY_START_THROTTLE = Object.freeze({ free: 5, baseSeconds: 60, maxSeconds: 3600, forgetAfterSeconds: 3600 });
/** Identity-verification starts per source address: each reaches the upstream provider; as generous as sign-in's address limit. */
export const IDV_START_THROTTLE = Object.freeze({ free: 30, baseSeconds: 60, maxSeconds: 3600, forgetAfterSeconds: 3600 });
/** Recoveries by identity verification per account: three a day, since each ends every session and replaces a credential. */
export const IDV_RECOVERY_THROTTLE = Object.freeze({ free: 3, baseSeconds: 86_400, maxSeconds: 86_400, forgetAfterSeconds: 86_400 });
/** Records one source address may make Akamon store without a sign-in (sign-ins begun, logouts, reset and ID-card flows) at once and per window: above a NAT-shared campus's busiest ten minutes, far below a flood. */
export const ANONYMOUS_RECORDS_PER_ADDRESS = 10_000;
/** The per-address budget refills over this, steadily (one record every 60 ms by default): a host that empties it shuts nobody out for long. */
export const ANONYMOUS_WINDOW_SECONDS = 600;
/** Records all callers without a sign-in together may keep stored at once: some 30 times a large campus's busiest hour, about half a gigabyte of rows at most. */
export const ANONYMOUS_RECORDS_MAX_STORED = 500_000;
/** Wrong device-flow user codes per source address, a budget: 30 at once, then one a minute; plenty for typing mistakes behind a campus NAT address, a few guesses of a 20^8 space. */
export const DEVICE_USER_CODE_GUESSES_PER_ADDRESS = Object.freeze({ burst: 30, refillSeconds: 60 });
/** Accounts one operator may look up (the console, the API, the CLI, SCIM): 300 at once, then one a second; a listed page counts one per OPERATOR_LOOKUP_ROWS rows. A busy counter never meets it; a stolen session or token cannot copy the directory in minutes. */
export const OPERATOR_LOOKUPS = Object.freeze({ burst: 300, refillSeconds: 1 });
/** Rows of a list (search, account list, SCIM page, revocations) that count as one look-up: a page of 1000 is 100, so a token lists 3,000 accounts at once and then 10 a second. */
export const OPERATOR_LOOKUP_ROWS = 10;
/** Wrong device-flow user codes from all addresses together: 500 at once, then one every 10 s; past it misses answer 429 and are logged as guessing spread over many addresses, while a right code is never refused (the per-address budget is what limits a guesser; a lucky guess could only approve the guesser's own account on someone's device). */
export const DEVICE_USER_CODE_GUESSES_EVERYONE = Object.freeze({ burst: 500, refillSeconds: 10 });

// One-time codes and captchas.

/** Lifetime of a code sent by SMS, voice or email: long enough to read a mail, short against guessing. */
export const OTP_CODE_TTL_SECONDS = 600;
/** Wrong entries one code survives before it is void (the per-method limit above counts them too). */
export const OTP_CODE_MAX_ATTEMPTS = 5;
/** Work of the password-reset captcha: the largest number a browser may have to try; costly in bulk, a moment for one person. */
export const CAPTCHA_MAX_NUMBER = 50_000;
/** A captcha challenge must be solved and sent within this: the reset form's lifetime, not a stockpile. */
export const CAPTCHA_CHALLENGE_SECONDS = 600;
/** A captcha solution longer than this is refused unread: real ones are a few hundred bytes. */
export const CAPTCHA_PAYLOAD_MAX_BYTES = 2000;

// Flows and sessions outside the provider.

/** A password-reset flow (its cookie and server-side state), from start to new password. */
export const RECOVERY_FLOW_TTL_SECONDS = 900;
/** An identity-verification flow, there to the ID card app and back. */
export const IDV_FLOW_TTL_SECONDS = 900;
/** One request at a time per sign-in, reset or ID-card flow: a turn held longer (its node died mid-request) is free again after this, far longer than a request takes. */
export const FLOW_TURN_HOLD_SECONDS = 30;
/** A form sent again while its first copy still runs waits this long for it (a double click then lands where the first went), then answers 409. */
export const FLOW_TURN_WAIT_MS = 5000;
/** The account home's own session: after an hour it signs in again (quickly while the sign-in session lives). */
export const HOME_SESSION_TTL_SECONDS = 3600;
/** A sign-in this recent counts as fresh: changes that need one (second factors, the ID card link) accept one within it. */
export const FRESH_SIGNIN_SECONDS = 600;
/** The console's session: an hour from the sign-in with a security key, never extended, so an unattended browser does not stay an operator's. */
export const CONSOLE_SESSION_TTL_SECONDS = 3600;
/** The console's sign-in, and its dangerous actions (reissue, MFA reset, suspension, revocation), need the security key shown this recently. */
export const CONSOLE_FRESH_SECONDS = 300;
/** After "later" on the MFA rollout notice, it stays away this long: a daily reminder, not a nag at every sign-in. */
export const MFA_NOTICE_REMIND_SECONDS = 86_400;
/** Accounts the browser remembers for the account picker: a shared computer shows a few, not a list of everyone. */
export const KNOWN_ACCOUNTS_MAX = 5;
/** How long the account picker's cookie lives: 400 days, the longest browsers keep a cookie. */
export const KNOWN_ACCOUNTS_DAYS = 400;

// The provider's lifetimes (sessions, interactions, codes, tokens).

/** The sign-in session (single sign-on), counted from the sign-in and never extended by using it: a working day. */
export const SESSION_TTL_SECONDS = 8 * 3600;
/** A sign-in session unused this long (no authorization, no refresh of a token bound to it) ends: two access-token lifetimes, so a system that refreshes its hourly token keeps a working person signed in, while a browser left alone on a shared computer asks for the password again within two hours, not at the end of the day. */
export const SESSION_IDLE_SECONDS = 2 * 3600;
/** A session that holds no sign-in (a logout begun by someone already signed out): it only has to outlive the logout's confirmation. */
export const ANONYMOUS_SESSION_TTL_SECONDS = 600;
/** One sign-in's steps (password change, MFA enrolment, education) must be finished within this. */
export const INTERACTION_TTL_SECONDS = 3600;
/** An access token: an hour, so a suspended account's tokens soon stop working even at systems that never ask again. */
export const ACCESS_TOKEN_TTL_SECONDS = 3600;
/** An ID token: as long as an access token. */
export const ID_TOKEN_TTL_SECONDS = 3600;
/** A refresh token and its grant: two weeks of staying signed in to a system without a new sign-in. */
export const REFRESH_TOKEN_TTL_SECONDS = 14 * 86_400;
/** An authorization code: the redirect back takes seconds (RFC 6749 asks for at most 10 minutes). */
export const AUTHORIZATION_CODE_TTL_SECONDS = 60;
/** A consumed code or refresh token its client presents again within this is a retry after a lost reply, not a replay: twice openid-client's 30 s timeout, and no longer than a code or an access token lives. */
export const TOKEN_RETRY_GRACE_SECONDS = 60;
/** A consumed code or refresh token presented again sooner than this after its use is a copy sent alongside it (a double submit), not a retry: a client learns of a lost answer from its timeout or a 503 with Retry-After 5. */
export const TOKEN_RETRY_EARLIEST_SECONDS = 2;
/** A device-flow request (RFC 8628): time to pick up a phone, open the page, type the code and sign in with MFA; short, since every live code is a target for guessing. */
export const DEVICE_CODE_TTL_SECONDS = 600;
/** An expired device code is kept this long, so that its device, still polling, hears expired_token rather than invalid_grant for an unknown code. */
export const DEVICE_CODE_KEPT_EXPIRED_SECONDS = 600;
/** Polls of one device code closer together than this answer slow_down: RFC 8628's default interval of 5 s, less a second for the network's jitter. */
export const DEVICE_POLL_MIN_SECONDS = 4;
/** CIBA requests: the flow is off; short in case it is turned on. */
export const UNUSED_FLOW_TTL_SECONDS = 600;
/** How often a node looks for rotated signing keys; a new key is published for twice this before it signs. */
export const KEY_REFRESH_SECONDS = 10;

// Passwords and other secrets.

/** Without MFA a password expires after 1 year and 1 month (the reference university's rule); with MFA never. */
export const PASSWORD_MAX_AGE_DAYS = 397;
/** From this many days before expiry, sign-in shows a notice with time to choose a new password. */
export const PASSWORD_NOTICE_DAYS = 14;
/** argon2id parameters: OWASP's recommendation (19 MiB, 2 iterations, 1 lane); hashes are upgraded at sign-in when these change. */
export const ARGON2 = Object.freeze({ memoryCost: 19_456, timeCost: 2, parallelism: 1 });
/** How often a node recounts the argon2 parameters of stored hashes, which unknown accounts are checked with: the mix changes only as people sign in after a settings change. */
export const HASH_CENSUS_REFRESH_SECONDS = 600;
/** Hashes allowed to wait per hashing thread; beyond that sign-in answers 503 instead of queueing for minutes. */
export const HASH_QUEUE_PER_THREAD = 4;
/** A typed password longer than this is refused without spending a hash on it: longer than any policy allows. */
export const PASSWORD_INPUT_MAX_LENGTH = 256;
/** Office-issued initial passwords: 16 characters from a 65-character alphabet, about 96 bits. */
export const INITIAL_PASSWORD_CHARACTERS = 16;
/** App passwords per account (devices that cannot do OIDC): enough for a person's devices, few enough to review. */
export const APP_PASSWORDS_MAX = 10;
/** Days after revocation during which a verified account may still reach data-salvage clients. */
export const SALVAGE_DAYS = 90;
/** A client secret's random bytes (client_secret_basic, client_secret_post): 256 bits, beyond any guessing. */
export const CLIENT_SECRET_BYTES = 32;
/** A client_secret_jwt client's secret, which is also its HMAC key: at least as long as HS512's hash (RFC 7518 section 3.2). */
export const HMAC_CLIENT_SECRET_BYTES = 64;

// Timeouts and limits of connections.

/** A whole HTTP request, body included, must arrive within this (slow-client attacks). */
export const HTTP_REQUEST_TIMEOUT_MS = 30_000;
/** The request headers must arrive within this. */
export const HTTP_HEADERS_TIMEOUT_MS = 15_000;
/** Headers per request; browsers send about 20. */
export const HTTP_MAX_HEADERS = 100;
/** Browsers keep to https for this long once they have seen Akamon (two years, the HSTS preload list's minimum is one). */
export const HSTS_MAX_AGE_SECONDS = 63_072_000;
/** A request to the SMS/voice gateway; past it the person is told to try again or another way. */
export const PHONE_GATEWAY_TIMEOUT_MS = 5000;
/** Discovery at the upstream identity provider; past it identity verification says the provider cannot be reached. */
export const IDV_UPSTREAM_TIMEOUT_SECONDS = 10;
/** Waiting for a pooled database connection, opening a new one included: past it the request answers 503. */
export const DATABASE_ACQUIRE_TIMEOUT_MS = 3000;
/** One SQL statement, measured by the server (statement_timeout): Akamon's statements take milliseconds. */
export const DATABASE_STATEMENT_TIMEOUT_MS = 5000;
/** One SQL statement, measured by the client: a frozen or black-holed server cannot hold a request longer. */
export const DATABASE_READ_TIMEOUT_MS = 6000;
/** Waiting for a row lock that a racing request holds (lock_timeout): the holder finishes in milliseconds. */
export const DATABASE_LOCK_TIMEOUT_MS = 3000;
/** A transaction left open by a node that died mid-request is ended by the server after this. */
export const DATABASE_IDLE_IN_TRANSACTION_MS = 15_000;
/** Retry-After of a 503 while the database is unavailable: a restart or failover takes seconds. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;
/** Retry-After of a 503 when the mail server or phone gateway did not take a code: a short outage's length, not a lockout. */
export const CODE_DELIVERY_RETRY_AFTER_SECONDS = 30;
/** How long /readyz waits for `select 1`: a load balancer's probe must get an answer, not a hang. */
export const READINESS_TIMEOUT_MS = 1000;
/** A request body Akamon reads (forms, protocol requests, admin JSON): far above any real one, small enough to parse on every request. */
export const REQUEST_BODY_MAX_BYTES = 65_536;
/** A form posted to one of Akamon's own pages: a handful of short fields. */
export const FORM_BODY_MAX_BYTES = 16_384;
/** How often each node deletes expired rows, so that stored state stays bounded. */
export const SWEEP_INTERVAL_SECONDS = 60;
/** A CLI request to the admin API: generous for a busy server, but a dead one does not hang the CLI. */
export const CLI_REQUEST_TIMEOUT_MS = 60_000;
/** A CSV file the CLI reads into memory at once (some 100,000 account rows). */
export const CSV_MAX_BYTES = 10 * 1024 * 1024;
/** Rows of one console import: a whole faculty's intake, while one job's report stays a page one can read. */
export const IMPORT_MAX_ROWS = 20_000;
/** An import whose node wrote no progress for this long is shown as interrupted (its node died or lost the database). */
export const IMPORT_STALL_SECONDS = 120;
/** Initial passwords of an import are kept (encrypted) for one download at most this long, then wiped. */
export const IMPORT_SECRET_TTL_SECONDS = 86_400;

// Notices by mail (src/notice/): how hard delivery tries. The lead times are settings (config.ts).
/** Tries per mail before it is recorded as failed: with the back-off below, about 20 hours of trying. */
export const NOTICE_MAX_ATTEMPTS = 12;
/** The first retry of a refused mail waits this long, each next one twice as long as the one before. */
export const NOTICE_RETRY_BASE_SECONDS = 60;
/** The longest wait between two tries of a mail: a server down for a day still gets a few. */
export const NOTICE_RETRY_MAX_SECONDS = 21_600;
/** While one node sends a mail no other takes it; a node that died mid-send frees it after this. */
export const NOTICE_SEND_LEASE_SECONDS = 300;

// Operators and provisioning (src/operator/, src/console/, src/scim/).
/** The longest an API token may live: a forgotten automation token should not outlast a year. */
export const OPERATOR_TOKEN_MAX_DAYS = 366;
/** An API token's lifetime when the operator names none: a quarter, long enough for a term's automation. */
export const OPERATOR_TOKEN_DEFAULT_DAYS = 90;
/** The most accounts a console search lists: a help desk looks for one person, not through everyone. */
export const CONSOLE_SEARCH_LIMIT = 50;
/** Users in one SCIM page: a feeding system pages through a faculty, and one answer stays a few MB. */
export const SCIM_MAX_RESULTS = 1000;
/** A SCIM filter's characters, comparisons and nesting: a sync's filter fits easily; one built to make the database work hard does not. */
export const SCIM_FILTER_LIMITS = Object.freeze({ length: 2000, terms: 50, depth: 10 });
/** Operations in one SCIM PATCH: a person's changes, not a batch job in one request. */
export const SCIM_PATCH_MAX_OPERATIONS = 100;
