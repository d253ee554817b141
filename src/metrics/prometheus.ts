import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DeliveryDeferred } from '../shared/errors.ts';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { FactorKind } from '../db/schema.ts';
import type { DatabaseStats } from '../db/database.ts';
import { ACCESS_DENIED_PREFIX, isSigninReason, type SigninReason } from '../audit/signin-reasons.ts';
import type { IdvOutcome, Meter, MfaMethod, MfaResult, ResetOutcome } from './meter.ts';

/** Grant types oidc-provider can be configured for; a client-sent value outside them is `other`. */
const GRANT_TYPES = new Set([
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'password',
  'urn:ietf:params:oauth:grant-type:device_code',
  'urn:ietf:params:oauth:grant-type:token-exchange',
  'urn:openid:params:grant-type:ciba',
]);
/** The token endpoint's error codes (RFC 6749, 8628, 9449 and the 503 of an unavailable database). */
const GRANT_ERRORS = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
  'access_denied',
  'authorization_pending',
  'slow_down',
  'expired_token',
  'invalid_dpop_proof',
  'use_dpop_nonce',
  'temporarily_unavailable',
  'server_error',
]);

const known = (value: unknown, set: ReadonlySet<string>): string => (typeof value === 'string' && set.has(value) ? value : 'other');

/**
 * The route groups of the latency histogram, by path prefix: a fixed handful, never the raw path
 * (which carries interaction ids and whatever a scanner tries).
 */
const ROUTE_GROUPS: ReadonlyArray<readonly [group: string, prefixes: readonly string[]]> = [
  ['authorize', ['/auth', '/interaction/', '/device', '/session/end', '/request']],
  ['token', ['/token']],
  ['userinfo', ['/me']],
  ['account', ['/account', '/recover', '/idv/']],
  ['console', ['/console']],
  ['admin_api', ['/admin/api']],
  ['scim', ['/scim/']],
  ['saml', ['/saml/']],
  ['static', ['/static/']],
];

export function routeGroup(path: string): string {
  for (const [group, prefixes] of ROUTE_GROUPS) {
    // A prefix matches itself and what lies below it, never a longer word (/me, not /metrics).
    if (prefixes.some((prefix) => path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`))) return group;
  }
  return 'other';
}

/** A task of the sweeper, or any periodic job, with the times it last finished without an error and last failed. */
export interface JobTimes {
  lastSuccess(): ReadonlyMap<string, Date>;
  lastFailure(): ReadonlyMap<string, Date>;
}

/** What is read at each scrape rather than counted as it happens: the hashing limiter's queue. */
export interface HashingQueue {
  readonly pending: number;
  readonly running: number;
  readonly shed: number;
}

/**
 * One node's metrics in a registry of its own (tests run several apps in one process), with the
 * default Node process metrics. The domain counts through the Meter interface; the web layer times
 * requests (`requestTimer`); the provider's events and the pulled figures are attached by app.ts.
 */
export class Metrics implements Meter {
  readonly registry = new Registry();
  readonly #signins: Counter<'result' | 'reason'>;
  readonly #denials: Counter<'rule'>;
  readonly #mfa: Counter<'method' | 'result'>;
  readonly #enrolments: Counter<'kind'>;
  readonly #resets: Counter<'outcome'>;
  readonly #idv: Counter<'outcome'>;
  readonly #grants: Counter<'grant_type' | 'result'>;
  readonly #backchannel: Counter<'outcome'>;
  readonly #latency: Histogram<'group' | 'status_class'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#signins = new Counter({ name: 'akamon_signins_total', help: 'Sign-in attempts by result and reason code (the sign-in log)', labelNames: ['result', 'reason'], registers });
    this.#denials = new Counter({ name: 'akamon_access_denials_total', help: 'Sign-ins refused by a client access rule, by rule', labelNames: ['rule'], registers });
    this.#mfa = new Counter({ name: 'akamon_mfa_verifications_total', help: 'Second-factor checks by method and result', labelNames: ['method', 'result'], registers });
    this.#enrolments = new Counter({ name: 'akamon_mfa_enrolments_total', help: 'Second factors added, by kind', labelNames: ['kind'], registers });
    this.#resets = new Counter({ name: 'akamon_password_resets_total', help: 'Self-service password reset steps by outcome', labelNames: ['outcome'], registers });
    this.#idv = new Counter({ name: 'akamon_identity_verifications_total', help: 'Identity verification outcomes', labelNames: ['outcome'], registers });
    this.#grants = new Counter({
      name: 'akamon_token_grants_total',
      help: 'Token endpoint grants by grant type and result (success or the OAuth error code)',
      labelNames: ['grant_type', 'result'],
      registers,
    });
    this.#backchannel = new Counter({ name: 'akamon_backchannel_logouts_total', help: 'Back-channel logout deliveries to relying parties by outcome', labelNames: ['outcome'], registers });
    this.#latency = new Histogram({
      name: 'akamon_http_request_duration_seconds',
      help: 'Request latency by route group and status class',
      labelNames: ['group', 'status_class'],
      // From a cached page to a password hash under load; the 503 deadline is 6 s.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  signin(result: 'success' | 'failure', reason: SigninReason): void {
    // Typed already; checked again so that a code cast past the type still cannot grow a series.
    const listed = isSigninReason(reason);
    this.#signins.inc({ result, reason: listed ? reason : 'other' });
    if (listed && reason.startsWith(ACCESS_DENIED_PREFIX)) this.#denials.inc({ rule: reason.slice(ACCESS_DENIED_PREFIX.length) });
  }

  mfaVerification(method: MfaMethod, result: MfaResult): void {
    this.#mfa.inc({ method, result });
  }

  factorAdded(kind: FactorKind): void {
    this.#enrolments.inc({ kind });
  }

  passwordReset(outcome: ResetOutcome): void {
    this.#resets.inc({ outcome });
  }

  identityVerification(outcome: IdvOutcome): void {
    this.#idv.inc({ outcome });
  }

  /** First in the middleware chain: one histogram observation per request. */
  requestTimer() {
    return async (ctx: Context, next: Next) => {
      const end = this.#latency.startTimer({ group: routeGroup(ctx.path) });
      try {
        await next();
      } finally {
        end({ status_class: `${Math.floor(ctx.status / 100)}xx` });
      }
    };
  }

  /** Token grants from the provider's events; back-channel logouts from its events too (oidc/backchannel.ts emits them for its own deliveries). */
  watchProvider(provider: Provider): void {
    provider.on('grant.success', (ctx) => this.#grants.inc({ grant_type: known(ctx.oidc.params?.grant_type, GRANT_TYPES), result: 'success' }));
    provider.on('grant.error', (ctx, error) => this.#grants.inc({ grant_type: known(ctx.oidc?.params?.grant_type, GRANT_TYPES), result: known((error as { error?: unknown }).error, GRANT_ERRORS) }));
    provider.on('backchannel.success', () => this.#backchannel.inc({ outcome: 'success' }));
    provider.on('backchannel.error', (_ctx: unknown, error: unknown) => {
      if (!(error instanceof DeliveryDeferred)) this.#backchannel.inc({ outcome: 'error' });
    });
  }

  /** The password hasher's limiter: waiting and running hashes, and those refused at once (503). */
  watchHashing(queue: HashingQueue): void {
    const registers = [this.registry];
    new Gauge({
      name: 'akamon_password_hash_queue_depth',
      help: 'Password hashes waiting for a thread',
      registers,
      collect() {
        this.set(queue.pending);
      },
    });
    new Gauge({
      name: 'akamon_password_hash_running',
      help: 'Password hashes being computed',
      registers,
      collect() {
        this.set(queue.running);
      },
    });
    new Counter({
      name: 'akamon_password_hash_shed_total',
      help: 'Password hashes refused because the queue was full (answered 503)',
      registers,
      collect() {
        // The limiter keeps the running total; a counter has no set, so it is rebuilt at each scrape.
        this.reset();
        this.inc(queue.shed);
      },
    });
  }

  /** The connection pool (pg's, also in front of PGlite, which has one connection) and failed queries. */
  watchDatabase(stats: () => DatabaseStats): void {
    const registers = [this.registry];
    new Gauge({
      name: 'akamon_db_pool_connections',
      help: 'Pooled database connections by state',
      labelNames: ['state'],
      registers,
      collect() {
        const now = stats();
        this.set({ state: 'idle' }, now.idle);
        this.set({ state: 'in_use' }, now.total - now.idle);
      },
    });
    new Gauge({
      name: 'akamon_db_pool_max_connections',
      help: 'The most connections the pool opens',
      registers,
      collect() {
        this.set(stats().max);
      },
    });
    new Gauge({
      name: 'akamon_db_pool_waiting_requests',
      help: 'Queries waiting for a pooled connection',
      registers,
      collect() {
        this.set(stats().waiting);
      },
    });
    new Counter({
      name: 'akamon_db_query_errors_total',
      help: 'Failed queries: unavailable (connection lost, timeout, overload) or statement (constraint, syntax, ...)',
      labelNames: ['kind'],
      registers,
      collect() {
        const { queryErrors } = stats();
        this.reset();
        this.inc({ kind: 'unavailable' }, queryErrors.unavailable);
        this.inc({ kind: 'statement' }, queryErrors.statement);
      },
    });
    new Counter({
      name: 'akamon_db_queries_total',
      help: 'Statements sent to the database, failed ones and transaction control (begin, commit, savepoints) included',
      registers,
      collect() {
        this.reset();
        this.inc(stats().queries);
      },
    });
  }

  /** Each periodic job's last success and last failure, as Unix times (alert on `time() - success > N`, and on a failure with no success). */
  watchJobs(jobs: JobTimes): void {
    const times: Array<[string, string, () => ReadonlyMap<string, Date>]> = [
      ['akamon_job_last_success_timestamp_seconds', 'When each periodic job last finished without an error (Unix time)', () => jobs.lastSuccess()],
      ['akamon_job_last_failure_timestamp_seconds', 'When each periodic job last failed (Unix time); with no last success, it never succeeded', () => jobs.lastFailure()],
    ];
    for (const [name, help, read] of times) {
      new Gauge({
        name,
        help,
        labelNames: ['job'],
        registers: [this.registry],
        collect() {
          for (const [job, at] of read()) this.set({ job }, at.getTime() / 1000);
        },
      });
    }
  }

  /** The exposition in Prometheus text format. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
