import { availableParallelism } from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import {
  ACCESS_TOKEN_TTL_SECONDS,
  ANONYMOUS_RECORDS_MAX_STORED,
  ANONYMOUS_RECORDS_PER_ADDRESS,
  ANONYMOUS_SESSION_TTL_SECONDS,
  ANONYMOUS_WINDOW_SECONDS,
  ARGON2,
  AUTHORIZATION_CODE_TTL_SECONDS,
  CAPTCHA_MAX_NUMBER,
  HASH_QUEUE_PER_THREAD,
  ID_TOKEN_TTL_SECONDS,
  IDV_FLOW_TTL_SECONDS,
  INTERACTION_TTL_SECONDS,
  KEY_REFRESH_SECONDS,
  PASSWORD_MAX_AGE_DAYS,
  PASSWORD_NOTICE_DAYS,
  RECOVERY_FLOW_TTL_SECONDS,
  REFRESH_TOKEN_TTL_SECONDS,
  SALVAGE_DAYS,
  SESSION_IDLE_SECONDS,
  SESSION_TTL_SECONDS,
  SWEEP_INTERVAL_SECONDS,
  TOKEN_RETRY_GRACE_SECONDS,
} from './defaults.ts';
import { parseSubnet, type Subnet } from '../shared/ip-address.ts';
import { isTimeZone, startOfDay } from '../shared/time-zone.ts';

/** Everything Akamon reads from the environment, parsed once and frozen. */
export interface Config {
  readonly production: boolean;
  readonly port: number;
  readonly listenHost: string;
  /**
   * A separate listener serving only /metrics without a token (src/metrics/metrics-route.ts), when
   * set; on the main port /metrics always needs a token with `metrics.read`.
   */
  readonly metrics: { readonly port: number; readonly host: string } | undefined;
  readonly issuer: string;
  /** Set to the issuer the database serves now to move it to `issuer` (see db/issuer-binding.ts). */
  readonly migrateIssuerFrom: string | undefined;
  /** The service's name in authenticator apps and letters. */
  readonly issuerName: string;
  /** Base secret for encrypting keys at rest and deriving HMAC keys; undefined means "development: keep one in the data dir". */
  readonly secret: string | undefined;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly realmSuffix: string | undefined;
  /**
   * The domains whose operator-set addresses (account.email) may receive a password reset: an
   * address counts when its domain is one of them or below one (src/account/reset-address.ts).
   */
  readonly trustedEmailDomains: readonly string[];
  readonly passwordProfile: 'university' | 'nist';
  /** Without MFA a password expires after maxAgeDays (0: never); a notice shows noticeDays before. */
  readonly passwordExpiry: { readonly maxAgeDays: number; readonly noticeDays: number };
  readonly argon2: { readonly memoryCost: number; readonly timeCost: number; readonly parallelism: number };
  readonly hashConcurrency: number;
  readonly hashQueueLimit: number;
  readonly hashNiceness: number;
  /** Whether any proxy is trusted: Koa then reads X-Forwarded-Proto and X-Forwarded-Host. */
  readonly trustProxy: boolean;
  /** The proxies whose X-Forwarded-For is believed (http/client-address.ts); empty: nobody's. */
  readonly trustedProxies: readonly Subnet[];
  /** Whether AKAMON_TRUSTED_PROXIES named the proxies (else AKAMON_TRUST_PROXY=true trusts every local network). */
  readonly proxiesNamed: boolean;
  /** How many X-Forwarded-For entries, from the right, the proxies in front of Akamon append at most. */
  readonly proxyHops: number;
  readonly backchannelAllowPrivate: boolean;
  readonly logLevel: string;
  readonly keyRefreshSeconds: number;
  readonly internalUrl: string | undefined;
  readonly phoneGateway:
    | { readonly kind: 'none' }
    | { readonly kind: 'webhook'; readonly url: string; readonly secret: string }
    | { readonly kind: 'twilio'; readonly apiUrl: string; readonly accountSid: string; readonly authToken: string; readonly from: string };
  /** smtp:// or smtps:// URL of the mail server; undefined writes mails to the log in development. */
  readonly smtpUrl: string | undefined;
  readonly mailFrom: string;
  /** The day the academic year begins (month, day), for the yearly security education. */
  readonly academicYearStart: { readonly month: number; readonly day: number };
  /** Work of the password-reset captcha: the largest number the browser may have to try. */
  readonly captchaMaxNumber: number;
  /** University-wide MFA rollout: a warning period from one date, enforcement from another. */
  readonly mfaRollout: { readonly warningFrom: Date | undefined; readonly requiredFrom: Date | undefined };
  /** Notices by mail (src/notice/): each occasion's switch and its lead times in days, soonest last. */
  readonly notices: {
    readonly revocation: NoticeSetting;
    readonly passwordExpiry: NoticeSetting;
    readonly mfaRequired: NoticeSetting;
    /** A sign-in method added or removed: mailed at once, so it has no lead time. */
    readonly factorChange: { readonly enabled: boolean };
  };
  /** The university's time zone: academic years and dates on pages follow it. */
  readonly timeZone: string;
  /** Country calling code for phone numbers typed without one (081-... in Japan). */
  readonly phoneDefaultCountry: string;
  /** The upstream identity provider for identity verification (the national ID card app), if any. */
  readonly idv: IdvSettings | undefined;
  /** Development only: run the stand-in identity provider on this port and verify through it. */
  readonly devIdvPort: number | undefined;
  /** Days after revocation during which a linked account may still reach salvage clients (0: never). */
  readonly salvageDays: number;
  /**
   * AKAMON_SCIM_DELETE_GRACE_DAYS: a SCIM DELETE schedules the revocation this many days ahead (the
   * person keeps signing in meanwhile, to back up their data); 0, the default: it revokes at once.
   */
  readonly scimDeleteGraceDays: number;
  /**
   * What a caller who has not signed in may make Akamon store (throttle/anonymous-cap.ts): per
   * source address `perAddress` records at once, refilled over `windowSeconds`; from everyone at most
   * `maxStored` stored at once, none longer than `lifetimeSeconds`. A session without a sign-in lives
   * `sessionTtl` seconds.
   */
  readonly anonymous: {
    readonly perAddress: number;
    readonly windowSeconds: number;
    readonly maxStored: number;
    readonly lifetimeSeconds: number;
    readonly sessionTtl: number;
  };
  readonly ttl: {
    /** The sign-in session's absolute lifetime, from the sign-in (auth_time); using it never extends it. */
    readonly session: number;
    /** A sign-in session unused this long ends (src/oidc/session-lifetime.ts). */
    readonly sessionIdle: number;
    readonly interaction: number;
    readonly accessToken: number;
    readonly idToken: number;
    readonly refreshToken: number;
    readonly authorizationCode: number;
  };
  /** A consumed code or refresh token presented again by its client within this many seconds may be a retry after a lost reply (oidc/token-retry.ts); 0: never. */
  readonly tokenRetryGraceSeconds: number;
}

export interface IdvSettings {
  readonly issuer: string;
  readonly clientId: string;
  /** client_secret_basic with this secret, or private_key_jwt with this key (PEM or JWK text). */
  readonly auth: { readonly kind: 'secret'; readonly secret: string } | { readonly kind: 'private_key_jwt'; readonly privateKey: string };
  readonly scopes: string;
  /** The ID-token claim that carries the person's name. */
  readonly nameClaim: string;
}

export interface NoticeSetting {
  readonly enabled: boolean;
  /** Days before the occasion, largest first: one mail at each. */
  readonly days: readonly number[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function flag(env: Env, name: string): boolean {
  const raw = (env[name] ?? '').toLowerCase();
  if (['', '0', 'false', 'no', 'off'].includes(raw)) return false;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  throw new ConfigError(`${name} must be true or false, got "${env[name]}"`);
}

function issuerUrl(raw: string, production: boolean): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`AKAMON_ISSUER is not a URL: "${raw}"`);
  }
  if (url.search || url.hash) throw new ConfigError('AKAMON_ISSUER must not have a query or fragment');
  if (production && url.protocol !== 'https:') throw new ConfigError('AKAMON_ISSUER must be an https URL in production');
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError('AKAMON_ISSUER must be http or https');
  return url.href.replace(/\/$/, '');
}

function phoneGateway(env: Env): Config['phoneGateway'] {
  const kind = env.AKAMON_PHONE_GATEWAY ?? 'none';
  const need = (name: string) => {
    const value = env[name];
    if (!value) throw new ConfigError(`${name} is required with AKAMON_PHONE_GATEWAY=${kind}`);
    return value;
  };
  const url = (name: string, value: string) => {
    try {
      return new URL(value).href;
    } catch {
      throw new ConfigError(`${name} is not a URL: "${value}"`);
    }
  };
  if (kind === 'none') return { kind };
  if (kind === 'webhook') {
    const secret = need('AKAMON_PHONE_WEBHOOK_SECRET');
    if (secret.length < 32) throw new ConfigError('AKAMON_PHONE_WEBHOOK_SECRET must be at least 32 characters');
    return { kind, url: url('AKAMON_PHONE_WEBHOOK_URL', need('AKAMON_PHONE_WEBHOOK_URL')), secret };
  }
  if (kind === 'twilio') {
    return {
      kind,
      apiUrl: url('AKAMON_TWILIO_API_URL', env.AKAMON_TWILIO_API_URL ?? 'https://api.twilio.com'),
      accountSid: need('AKAMON_TWILIO_ACCOUNT_SID'),
      authToken: need('AKAMON_TWILIO_AUTH_TOKEN'),
      from: need('AKAMON_TWILIO_FROM'),
    };
  }
  throw new ConfigError(`AKAMON_PHONE_GATEWAY must be none, webhook or twilio, got "${kind}"`);
}

/** A switch that is on unless turned off. */
function switchedOn(env: Env, name: string): boolean {
  return env[name] === undefined || env[name] === '' || flag(env, name);
}

/** AKAMON_NOTICE_<NAME> (on/off) and AKAMON_NOTICE_<NAME>_DAYS ("60,14"). */
function noticeSetting(env: Env, name: string, fallback: readonly number[]): NoticeSetting {
  const variable = `AKAMON_NOTICE_${name}_DAYS`;
  const raw = env[variable];
  let days = fallback;
  if (raw !== undefined && raw !== '') {
    if (!/^\d{1,4}(,\d{1,4})*$/.test(raw.replace(/\s+/g, ''))) throw new ConfigError(`${variable} must be whole numbers of days separated by commas (such as 60,14), got "${raw}"`);
    days = raw.replace(/\s+/g, '').split(',').map(Number);
    if (days.some((d) => d < 1 || d > 3650)) throw new ConfigError(`${variable} must be between 1 and 3650 days, got "${raw}"`);
  }
  return Object.freeze({ enabled: switchedOn(env, `AKAMON_NOTICE_${name}`), days: Object.freeze([...new Set(days)].sort((a, b) => b - a)) });
}

/** An ISO date or date-time; a bare date means its start in the university's time zone. */
function instant(env: Env, name: string, zone: string): Date | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  const value = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? startOfDay(raw, zone) : new Date(raw);
  if (Number.isNaN(value.getTime())) throw new ConfigError(`${name} must be a date such as 2027-04-01, got "${raw}"`);
  return value;
}

function monthDay(raw: string): { month: number; day: number } {
  const match = /^(\d{2})-(\d{2})$/.exec(raw);
  const month = Number(match?.[1]);
  const day = Number(match?.[2]);
  if (!match || month < 1 || month > 12 || day < 1 || day > 28) throw new ConfigError(`AKAMON_ACADEMIC_YEAR_START must be MM-DD (day 1 to 28), got "${raw}"`);
  return { month, day };
}

function timeZone(raw: string): string {
  // An IANA name only: an offset such as +09:00 would be right in winter and wrong in summer elsewhere.
  if (!/^[A-Za-z_]+(\/[A-Za-z0-9_+-]+)*$/.test(raw) || !isTimeZone(raw)) {
    throw new ConfigError(`AKAMON_TIME_ZONE must be an IANA time zone name such as Asia/Tokyo, got "${raw}"`);
  }
  return raw;
}

function smtpUrl(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('AKAMON_SMTP_URL is not a URL (smtp://user:password@host:587 or smtps://...)');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new ConfigError('AKAMON_SMTP_URL must start with smtp:// or smtps://');
  return raw;
}

function urlOf(name: string, raw: string, production: boolean): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a URL: "${raw}"`);
  }
  if (production && url.protocol !== 'https:') throw new ConfigError(`${name} must be an https URL in production`);
  return url.href.replace(/\/$/, '');
}

function idvSettings(env: Env, production: boolean, readFile: (file: string) => string): IdvSettings | undefined {
  if (!env.AKAMON_IDV_ISSUER) return undefined;
  const clientId = env.AKAMON_IDV_CLIENT_ID;
  if (!clientId) throw new ConfigError('AKAMON_IDV_CLIENT_ID is required with AKAMON_IDV_ISSUER');
  const secret = env.AKAMON_IDV_CLIENT_SECRET;
  const keyFile = env.AKAMON_IDV_PRIVATE_KEY_FILE;
  if (Boolean(secret) === Boolean(keyFile)) throw new ConfigError('set exactly one of AKAMON_IDV_CLIENT_SECRET and AKAMON_IDV_PRIVATE_KEY_FILE');
  let auth: IdvSettings['auth'];
  if (keyFile) {
    try {
      auth = { kind: 'private_key_jwt', privateKey: readFile(keyFile) };
    } catch {
      throw new ConfigError(`AKAMON_IDV_PRIVATE_KEY_FILE cannot be read: ${keyFile}`);
    }
  } else {
    auth = { kind: 'secret', secret: secret! };
  }
  const scopes = (env.AKAMON_IDV_SCOPES ?? 'openid profile').trim().split(/\s+/);
  if (!scopes.includes('openid')) throw new ConfigError('AKAMON_IDV_SCOPES must include openid');
  return Object.freeze({
    issuer: urlOf('AKAMON_IDV_ISSUER', env.AKAMON_IDV_ISSUER, production),
    clientId,
    auth: Object.freeze(auth),
    scopes: scopes.join(' '),
    nameClaim: env.AKAMON_IDV_NAME_CLAIM || 'name',
  });
}

/** The realm of the reference university's sign-in names (`0123456789@utac.u-tokyo.ac.jp`). */
export const DEFAULT_REALM_SUFFIX = 'utac.u-tokyo.ac.jp';

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * AKAMON_TRUSTED_EMAIL_DOMAINS. Unset, the realm suffix without its first label (the sign-in realm
 * utac.u-tokyo.ac.jp is a subdomain of the university's u-tokyo.ac.jp), or none without a realm or
 * when that leaves a single label; "none" or an empty value: no operator-set address counts.
 */
function trustedEmailDomains(raw: string | undefined, realm: string | undefined): readonly string[] {
  if (raw === undefined) {
    const parent = realm?.slice(realm.indexOf('.') + 1) ?? '';
    return Object.freeze(realm?.includes('.') && parent.includes('.') ? [parent] : []);
  }
  const entries = raw
    .split(',')
    .map((entry) => entry.trim().toLowerCase().replace(/^@/, ''))
    .filter(Boolean);
  if (entries.length === 1 && entries[0] === 'none') return Object.freeze([]);
  for (const entry of entries) {
    // A single label (jp) would trust every address under a whole country or registry.
    if (!DOMAIN.test(entry) || !entry.includes('.'))
      throw new ConfigError(`AKAMON_TRUSTED_EMAIL_DOMAINS: "${entry.slice(0, 60)}" is not a domain such as u-tokyo.ac.jp (separate several with commas; "none" trusts no operator-set address)`);
  }
  return Object.freeze([...new Set(entries)]);
}

/** Loopback and private networks: the proxies AKAMON_TRUST_PROXY=true trusts when AKAMON_TRUSTED_PROXIES names none. */
export const LOCAL_NETWORKS: readonly string[] = Object.freeze(['127.0.0.0/8', '::1', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']);

/** AKAMON_TRUSTED_PROXIES, or the local networks with AKAMON_TRUST_PROXY=true alone, or nobody; and whether the list named them. */
function trustedProxies(env: Env): { subnets: readonly Subnet[]; named: boolean } {
  const named = (env.AKAMON_TRUSTED_PROXIES ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const trust = flag(env, 'AKAMON_TRUST_PROXY');
  if (named.length > 0 && env.AKAMON_TRUST_PROXY && !trust) throw new ConfigError('AKAMON_TRUSTED_PROXIES names proxies but AKAMON_TRUST_PROXY is false: remove one of the two');
  const entries = named.length > 0 ? named : trust ? LOCAL_NETWORKS : [];
  const subnets = Object.freeze(
    entries.map(
      (entry) =>
        parseSubnet(entry) ??
        (() => {
          throw new ConfigError(`AKAMON_TRUSTED_PROXIES: "${entry.slice(0, 60)}" is not an address or network (such as 10.0.0.5 or 10.0.0.0/24)`);
        })(),
    ),
  );
  return { subnets, named: named.length > 0 };
}

const anonymousSessionTtl = (env: Env) => integer(env, 'AKAMON_ANONYMOUS_SESSION_TTL_SECONDS', ANONYMOUS_SESSION_TTL_SECONDS, 60, 86_400);

/** The longest a record made without a sign-in stays stored: the longest of their lifetimes, until the next sweep. */
const anonymousLifetime = (env: Env) => Math.max(INTERACTION_TTL_SECONDS, RECOVERY_FLOW_TTL_SECONDS, IDV_FLOW_TTL_SECONDS, anonymousSessionTtl(env)) + SWEEP_INTERVAL_SECONDS;

/** Loopback unless told otherwise: whoever reaches this port reads the metrics without a token. */
function metricsListener(env: Env, port: number): Config['metrics'] {
  if (!env.AKAMON_METRICS_PORT) return undefined;
  const metricsPort = integer(env, 'AKAMON_METRICS_PORT', 0, 1, 65535);
  if (metricsPort === port) throw new ConfigError('AKAMON_METRICS_PORT must differ from PORT: the main port serves /metrics only with a token');
  return Object.freeze({ port: metricsPort, host: env.AKAMON_METRICS_HOST || '127.0.0.1' });
}

/** The stand-in identity provider runs in development unless a real one is configured or it is turned off. */
function devIdvPort(env: Env, production: boolean, port: number): number | undefined {
  const wanted = env.AKAMON_DEV_IDV === undefined || env.AKAMON_DEV_IDV === '' ? !env.AKAMON_IDV_ISSUER && !production : flag(env, 'AKAMON_DEV_IDV');
  if (!wanted) return undefined;
  if (production) throw new ConfigError('AKAMON_DEV_IDV is for development only and cannot be turned on in production');
  if (env.AKAMON_IDV_ISSUER) throw new ConfigError('AKAMON_DEV_IDV and AKAMON_IDV_ISSUER exclude each other');
  return integer(env, 'AKAMON_DEV_IDV_PORT', port === 0 ? 0 : (port + 1) % 65536, 0, 65535);
}

/**
 * Production or not: AKAMON_ENV, else NODE_ENV (which tools set to other words too, read as
 * development). A mistyped AKAMON_ENV is refused: read as development, it would turn off what
 * production mode guards (HTTPS, Secure cookies, a real mail server). Empty is unset, as everywhere.
 */
function isProduction(env: Env): boolean {
  const chosen = env.AKAMON_ENV || undefined;
  if (chosen !== undefined && chosen !== 'production' && chosen !== 'development') {
    throw new ConfigError(`AKAMON_ENV must be production or development, not "${chosen.slice(0, 40)}"`);
  }
  return (chosen ?? env.NODE_ENV) === 'production';
}

export function loadConfig(env: Env = process.env, readFile: (file: string) => string = (file) => fs.readFileSync(file, 'utf8')): Config {
  const production = isProduction(env);
  const port = integer(env, 'PORT', 3000, 0, 65535);
  const secret = env.AKAMON_SECRET || undefined;
  const { subnets: proxies, named: proxiesNamed } = trustedProxies(env);
  if (production) {
    if (!env.AKAMON_ISSUER) throw new ConfigError('AKAMON_ISSUER is required in production');
    if (!secret) throw new ConfigError('AKAMON_SECRET is required in production');
    // Akamon speaks plain HTTP behind a TLS-terminating proxy, and only a trusted proxy may say who the client is.
    if (proxies.length === 0)
      throw new ConfigError('production runs behind a TLS-terminating proxy: set AKAMON_TRUSTED_PROXIES to its addresses (or AKAMON_TRUST_PROXY=true for a proxy on a loopback or private network)');
  }
  if (secret !== undefined && secret.length < 32) {
    throw new ConfigError('AKAMON_SECRET must be at least 32 characters (for example: openssl rand -base64 48)');
  }
  const profile = env.AKAMON_PASSWORD_PROFILE ?? 'university';
  if (profile !== 'university' && profile !== 'nist') {
    throw new ConfigError(`AKAMON_PASSWORD_PROFILE must be "university" or "nist", got "${profile}"`);
  }
  // The sign-in name the university's own instructions tell people to type works out of the box.
  // An empty value counts as unset (docker-compose passes `${AKAMON_REALM_SUFFIX:-}`); `none` turns it off.
  const realmSetting = env.AKAMON_REALM_SUFFIX?.replace(/^@/, '').trim().toLowerCase() || DEFAULT_REALM_SUFFIX;
  const realm = realmSetting === 'none' ? undefined : realmSetting;
  if (realm && !/^[a-z0-9.-]+$/.test(realm)) throw new ConfigError(`AKAMON_REALM_SUFFIX is not a domain (or "none"): "${realm}"`);
  const zone = timeZone(env.AKAMON_TIME_ZONE ?? 'Asia/Tokyo');
  const cores = availableParallelism();
  const hashConcurrency = integer(env, 'AKAMON_HASH_CONCURRENCY', cores, 1, 256);

  return Object.freeze({
    production,
    port,
    listenHost: env.AKAMON_LISTEN_HOST ?? (production ? '0.0.0.0' : '127.0.0.1'),
    metrics: metricsListener(env, port),
    issuer: issuerUrl(env.AKAMON_ISSUER ?? `http://localhost:${port}`, production),
    migrateIssuerFrom: env.AKAMON_MIGRATE_ISSUER_FROM ? urlOf('AKAMON_MIGRATE_ISSUER_FROM', env.AKAMON_MIGRATE_ISSUER_FROM, false) : undefined,
    issuerName: (env.AKAMON_ISSUER_NAME ?? 'Akamon').slice(0, 64),
    secret,
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: path.resolve(env.AKAMON_DATA_DIR ?? './data'),
    realmSuffix: realm,
    trustedEmailDomains: trustedEmailDomains(env.AKAMON_TRUSTED_EMAIL_DOMAINS, realm || undefined),
    passwordProfile: profile,
    passwordExpiry: Object.freeze({
      maxAgeDays: integer(env, 'AKAMON_PASSWORD_MAX_AGE_DAYS', PASSWORD_MAX_AGE_DAYS, 0, 36500),
      noticeDays: integer(env, 'AKAMON_PASSWORD_NOTICE_DAYS', PASSWORD_NOTICE_DAYS, 0, 365),
    }),
    argon2: Object.freeze({
      memoryCost: integer(env, 'AKAMON_ARGON2_MEMORY_KIB', ARGON2.memoryCost, 1024, 4 * 1024 * 1024),
      timeCost: integer(env, 'AKAMON_ARGON2_ITERATIONS', ARGON2.timeCost, 1, 100),
      parallelism: integer(env, 'AKAMON_ARGON2_PARALLELISM', ARGON2.parallelism, 1, 16),
    }),
    hashConcurrency,
    hashQueueLimit: integer(env, 'AKAMON_HASH_QUEUE', hashConcurrency * HASH_QUEUE_PER_THREAD, 0, 100_000),
    hashNiceness: integer(env, 'AKAMON_HASH_NICE', 10, 0, 19),
    trustProxy: proxies.length > 0,
    trustedProxies: proxies,
    proxiesNamed,
    proxyHops: integer(env, 'AKAMON_PROXY_HOPS', 1, 1, 10),
    backchannelAllowPrivate: flag(env, 'AKAMON_BACKCHANNEL_ALLOW_PRIVATE'),
    logLevel: env.AKAMON_LOG_LEVEL ?? 'info',
    keyRefreshSeconds: integer(env, 'AKAMON_KEY_REFRESH_SECONDS', KEY_REFRESH_SECONDS, 1, 3600),
    internalUrl: env.AKAMON_INTERNAL_URL || undefined,
    phoneGateway: phoneGateway(env),
    academicYearStart: monthDay(env.AKAMON_ACADEMIC_YEAR_START ?? '04-01'),
    timeZone: zone,
    captchaMaxNumber: integer(env, 'AKAMON_CAPTCHA_MAX_NUMBER', CAPTCHA_MAX_NUMBER, 100, 10_000_000),
    mfaRollout: Object.freeze({
      warningFrom: instant(env, 'AKAMON_MFA_WARNING_FROM', zone),
      requiredFrom: instant(env, 'AKAMON_MFA_REQUIRED_FROM', zone),
    }),
    notices: Object.freeze({
      // Time to back data up before a revocation and a last reminder; one before a password expires; a month and a week before the MFA date.
      revocation: noticeSetting(env, 'REVOCATION', [60, 14]),
      passwordExpiry: noticeSetting(env, 'PASSWORD_EXPIRY', [14]),
      mfaRequired: noticeSetting(env, 'MFA_REQUIRED', [30, 7]),
      factorChange: Object.freeze({ enabled: switchedOn(env, 'AKAMON_NOTICE_FACTOR_CHANGE') }),
    }),
    smtpUrl: smtpUrl(env.AKAMON_SMTP_URL),
    mailFrom: env.AKAMON_MAIL_FROM ?? `Akamon <no-reply@${new URL(issuerUrl(env.AKAMON_ISSUER ?? `http://localhost:${port}`, production)).hostname}>`,
    phoneDefaultCountry: /^\d{1,3}$/.test(env.AKAMON_PHONE_DEFAULT_COUNTRY ?? '81')
      ? (env.AKAMON_PHONE_DEFAULT_COUNTRY ?? '81')
      : (() => {
          throw new ConfigError('AKAMON_PHONE_DEFAULT_COUNTRY must be 1 to 3 digits');
        })(),
    idv: idvSettings(env, production, readFile),
    devIdvPort: devIdvPort(env, production, port),
    salvageDays: integer(env, 'AKAMON_SALVAGE_DAYS', SALVAGE_DAYS, 0, 3650),
    scimDeleteGraceDays: integer(env, 'AKAMON_SCIM_DELETE_GRACE_DAYS', 0, 0, 3650),
    anonymous: Object.freeze({
      perAddress: integer(env, 'AKAMON_ANONYMOUS_PER_ADDRESS', ANONYMOUS_RECORDS_PER_ADDRESS, 1, 10_000_000),
      windowSeconds: ANONYMOUS_WINDOW_SECONDS,
      maxStored: integer(env, 'AKAMON_ANONYMOUS_MAX_STORED', ANONYMOUS_RECORDS_MAX_STORED, 2, 1_000_000_000),
      lifetimeSeconds: anonymousLifetime(env),
      sessionTtl: anonymousSessionTtl(env),
    }),
    ttl: Object.freeze({
      // Seconds are allowed (tests, demonstrations): a short session is never less safe.
      session: integer(env, 'AKAMON_SESSION_TTL_SECONDS', SESSION_TTL_SECONDS, 1),
      sessionIdle: integer(env, 'AKAMON_SESSION_IDLE_SECONDS', SESSION_IDLE_SECONDS, 1),
      interaction: INTERACTION_TTL_SECONDS,
      accessToken: integer(env, 'AKAMON_ACCESS_TOKEN_TTL_SECONDS', ACCESS_TOKEN_TTL_SECONDS, 60),
      idToken: ID_TOKEN_TTL_SECONDS,
      refreshToken: integer(env, 'AKAMON_REFRESH_TOKEN_TTL_SECONDS', REFRESH_TOKEN_TTL_SECONDS, 60),
      authorizationCode: AUTHORIZATION_CODE_TTL_SECONDS,
    }),
    // At most the 60 s a code lives (and the shortest access-token lifetime): what a retry replaces must still be there.
    tokenRetryGraceSeconds: integer(env, 'AKAMON_TOKEN_RETRY_GRACE_SECONDS', TOKEN_RETRY_GRACE_SECONDS, 0, AUTHORIZATION_CODE_TTL_SECONDS),
  });
}
