import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { AFFILIATIONS, STATUSES } from '../account/account.service.ts';
import type { AccountRow } from '../account/account.store.ts';
import type { ClientService } from '../client/client.service.ts';
import { SETTING_ENTRIES, type ClientInput, type SettingType } from '../client/client-settings.ts';
import type { AccountStatus, Affiliation } from '../db/schema.ts';
import type { Database } from '../db/database.ts';
import { DomainError, RetryLaterError } from '../shared/errors.ts';
import { answerTo } from '../http/error-map.ts';
import type { OperatorStore } from '../operator/operator.store.ts';
import type { HelpDesk } from '../operator/help-desk.ts';
import { authorize, type Principal } from '../operator/permissions.ts';
import { bearerOperator, unauthorized } from '../http/operator-bearer.ts';
import type { DashboardService } from '../dashboard/dashboard.service.ts';
import { apiTokenId, roleAndScope, tokenExpiry, tokenName } from '../operator/operator-input.ts';
import type { TokenService } from '../mfa/token.service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { AccountRuleStore } from '../access/account-rule.store.ts';
import { COMMON_ID_PATTERN } from '../account/common-id.ts';
import { FIRST_PARTY_CLIENT_IDS } from '../selfservice/account-client.ts';
import { revocationReason, revocationTime, type Revocations } from '../account/revocation.ts';
import { ACCOUNT_FIELD_KEYS, profileJson } from '../account/account-fields.ts';
import { normalizeDepartment } from '../account/department.ts';
import { inCalendarRange, isoInZone } from '../shared/time-zone.ts';
import { excerpt } from '../shared/text.ts';
import { sendsOtherThanJson } from '../http/input-guard.ts';
import { accountEmails } from '../account/reset-address.ts';
import { OPERATOR_TOKEN_DEFAULT_DAYS } from '../config/defaults.ts';

export interface AdminApiDeps {
  operators: OperatorStore;
  helpDesk: HelpDesk;
  clients: ClientService;
  /** Publishes new signing keys; `record` writes the audit record in the same transaction. */
  rotateKeys: (record: (kids: string[]) => Promise<void>) => Promise<string[]>;
  tokens: TokenService;
  audit: AuditLog;
  accountRules: AccountRuleStore;
  revocations: Revocations;
  timeZone: string;
  /** AKAMON_TRUSTED_EMAIL_DOMAINS: whether the university-registered address can receive a reset. */
  trustedEmailDomains: readonly string[];
  /** The ICT office's figures (GET /dashboard). */
  dashboard: DashboardService;
  /** One transaction for a change and its audit record (Database#unitOfWork). */
  unitOfWork: Database['unitOfWork'];
}

/**
 * An account as operators see it. `email` is the university-registered address, `recoveryEmail` the
 * confirmed one the person registered; `passwordResetByEmail` tells which of them a reset goes to
 * (`via`), or why none can (`reason`), by src/account/reset-address.ts.
 */
function accountJsonOf(a: AccountRow, trustedEmailDomains: readonly string[]) {
  const { recovery, reset } = accountEmails(a, { trustedEmailDomains });
  return {
    commonId: a.common_id,
    name: a.name,
    email: a.email,
    recoveryEmail: recovery,
    passwordResetByEmail: { possible: reset.possible, via: reset.via, reason: reset.possible ? null : reset.reason },
    affiliation: a.affiliation,
    status: a.status,
    mustChangePassword: a.must_change_password,
    mfaRequired: a.mfa_required,
    mfaPostponed: a.mfa_postpone_count,
    passwordSetAt: new Date(a.password_set_at).toISOString(),
    revokeAt: a.revoke_at ? new Date(a.revoke_at).toISOString() : null,
    revokeReason: a.revoke_reason,
    revokedAt: a.revoked_at ? new Date(a.revoked_at).toISOString() : null,
    createdAt: new Date(a.created_at).toISOString(),
    ...profileJson(a),
  };
}

/** What creating an account takes: the core fields and those of account-fields.ts. */
const ACCOUNT_KEYS: ReadonlySet<string> = new Set(['commonId', 'name', 'affiliation', 'email', ...ACCOUNT_FIELD_KEYS]);
const FIELD_LIST = [...ACCOUNT_FIELD_KEYS].join(', ');

/** A misspelt field would otherwise be dropped without a word, and the operator believe it set. */
function refuseUnknown(body: Record<string, unknown>, known: (key: string) => boolean, what: string): void {
  const unknown = Object.keys(body).filter((key) => !known(key));
  if (unknown.length) bad(`unknown field ${excerpt(unknown.join(', '))}; ${what}`);
}

function bad(message: string): never {
  throw new DomainError('invalid_request', message);
}

/**
 * A field that holds text: undefined when absent or null, refused when of another JSON type (String()
 * would store an object as "[object Object]" and a list as its items joined). Every handler reads
 * its text fields here.
 */
function textOf(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : bad(`${key} must be a string`);
}

/** The JSON type a setting of each kind takes in the admin API (null clears a nullable one). */
function settingValue(key: string, type: SettingType, value: unknown): unknown {
  const strings = Array.isArray(value) && value.every((v) => typeof v === 'string');
  switch (type.kind) {
    case 'flag':
      return typeof value === 'boolean' ? value : bad(`${key} must be a boolean`);
    case 'choice':
      return typeof value === 'string' ? value : bad(`${key} must be a string`);
    case 'text':
      return typeof value === 'string' || (type.nullable && value === null) ? value : bad(`${key} must be a string${type.nullable ? ' or null' : ''}`);
    case 'uri':
    case 'date':
      return typeof value === 'string' || value === null ? value : bad(`${key} must be a string or null`);
    case 'integer':
      return typeof value === 'number' || value === null ? value : bad(`${key} must be a number or null`);
    case 'uris':
      return strings ? value : bad(`${key} must be a list of strings`);
    case 'list':
      return strings || (type.anyMeansAll && value === null) ? value : bad(`${key} must be a list of strings${type.anyMeansAll ? ' or null' : ''}`);
    case 'jwks':
      return (typeof value === 'object' && !Array.isArray(value)) || value === null ? value : bad(`${key} must be a JSON Web Key Set object or null`);
    case 'saml-metadata':
      return typeof value === 'string' ? value : bad(`${key} must be the SAML metadata as an XML string`);
  }
}

const SETTING_KEYS: ReadonlySet<string> = new Set(SETTING_ENTRIES.map(([key]) => key));

/** The client settings in a request body, by the settings table; what a body leaves out stays out. */
export function clientInput(body: Record<string, unknown>): ClientInput {
  return Object.fromEntries(SETTING_ENTRIES.filter(([key]) => body[key] !== undefined).map(([key, setting]) => [key, settingValue(key, setting.type, body[key])])) as ClientInput;
}

/** An instant as the handlers write it (Date#toISOString); any text of exactly this form names the same instant in the zone. */
const UTC_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * The answer with every instant in the university's time zone (`2027-03-31T00:00:00+09:00`), so
 * that operators and their scripts read the day the university means, not the UTC one before it.
 * One pass over the answer rather than a conversion in each handler, so none is forgotten.
 */
function inZone(value: unknown, timeZone: string): unknown {
  if (typeof value === 'string') return UTC_INSTANT.test(value) ? isoInZone(value, timeZone) : value;
  if (value instanceof Date) return isoInZone(value, timeZone);
  if (Array.isArray(value)) return value.map((item) => inZone(item, timeZone));
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, inZone(item, timeZone)]));
  }
  return value;
}

/** A role and scope from a request body: `role`, `departments` and `affiliations` (lists; empty = no limit). */
function roleAndScopeOf(b: Record<string, unknown>, forPerson = false) {
  const list = (key: string): unknown[] => {
    const value = b[key] ?? [];
    return Array.isArray(value) ? value : bad(`${key} must be a list of strings`);
  };
  if (b.wholeUniversity !== undefined && typeof b.wholeUniversity !== 'boolean') bad('wholeUniversity must be true or false');
  return roleAndScope({ role: b.role, departments: list('departments'), affiliations: list('affiliations'), wholeUniversity: b.wholeUniversity === true }, forPerson);
}

/**
 * The operator API behind the `akamon` CLI: JSON in and out, a bearer API token, errors as
 * {"error": code, "error_description": text}. Every route asks the permission model
 * (src/operator/permissions.ts), through the HelpDesk for account tasks; it works the same on every
 * node and database.
 */
export function adminApi(deps: AdminApiDeps): Router {
  const router = new Router({ prefix: '/admin/api' });
  const accountJson = (a: AccountRow) => accountJsonOf(a, deps.trustedEmailDomains);
  const desk = deps.helpDesk;

  router.use(async (ctx: Context, next: Next) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      const principal = await bearerOperator(ctx, deps.operators);
      if (!principal) return unauthorized(ctx, 'akamon-admin');
      ctx.state.principal = principal;
      if (sendsOtherThanJson(ctx)) throw new DomainError('unsupported_media_type', 'send the body as JSON, with Content-Type: application/json');
      await next();
      // Only a JSON answer: setting an empty body again would turn a 404 into a 204.
      if (ctx.body !== null && typeof ctx.body === 'object') ctx.body = inZone(ctx.body, deps.timeZone);
      if (ctx.method !== 'GET') ctx.state.log.info({ operator: principal.actor, role: principal.role, method: ctx.method, path: ctx.path, status: ctx.status }, 'admin action');
    } catch (error) {
      if (error instanceof DomainError) {
        const { status } = answerTo(ctx, error);
        if (status >= 500 && !(error instanceof RetryLaterError)) ctx.state.log.error({ err: error }, 'admin request failed');
        ctx.status = status;
        ctx.body = { error: error.code, error_description: error.message, ...error.details };
        return;
      }
      const status = (error as { status?: number }).status;
      if (status && status >= 400 && status < 500) {
        ctx.status = status;
        ctx.body = { error: 'invalid_request', error_description: (error as Error).message };
        return;
      }
      // The API's own shape for the unexpected too: no HTML page, and no stack or message for the caller.
      ctx.state.log.error({ err: error }, 'admin request failed');
      ctx.status = 500;
      ctx.body = { error: 'server_error', error_description: 'the request could not be completed; try again later' };
    }
  });

  const who = (ctx: Context): Principal => ctx.state.principal;
  /** Operator tasks that are not about one account: the role is checked here, and the audit names the operator. */
  const audit = (ctx: Context, action: string, accountId: string | null, details: Record<string, unknown> = {}) => deps.audit.record({ actor: who(ctx).actor, action, accountId, details });
  /** A change and its audit record, kept together or not at all. */
  const recorded = <T>(change: () => Promise<T>) => deps.unitOfWork(change);

  const body = (ctx: Context) => {
    const value = ctx.request.body;
    // A body of another type was refused above (415); no body at all is an empty one.
    if (value === undefined || value === null || !ctx.request.is('json', '+json')) return {};
    if (typeof value !== 'object' || Array.isArray(value)) bad('the body must be a JSON object');
    return value as Record<string, unknown>;
  };

  const limitOf = (ctx: Context, max: number) => {
    const limit = Number(ctx.query.limit ?? 100);
    if (!Number.isInteger(limit) || limit < 1 || limit > max) bad(`limit must be from 1 to ${max}`);
    return limit;
  };

  router.post('/accounts', async (ctx) => {
    const b = body(ctx);
    refuseUnknown(b, (key) => ACCOUNT_KEYS.has(key), `an account has ${[...ACCOUNT_KEYS].join(', ')}`);
    const { account, initialPassword } = await desk.create(who(ctx), {
      commonId: textOf(b, 'commonId') ?? '',
      name: textOf(b, 'name') ?? '',
      affiliation: textOf(b, 'affiliation') ?? '',
      email: textOf(b, 'email') ?? null,
      profile: b,
    });
    ctx.status = 201;
    ctx.body = { commonId: account.common_id, initialPassword, account: accountJson(account) };
  });

  router.get('/accounts', async (ctx) => {
    const { status, affiliation, department, after, q } = ctx.query;
    const limit = limitOf(ctx, 1000);
    if (status !== undefined && !STATUSES.includes(status as AccountStatus)) bad(`status must be one of ${STATUSES.join(', ')}`);
    if (affiliation !== undefined && !AFFILIATIONS.includes(affiliation as Affiliation)) bad(`affiliation must be one of ${AFFILIATIONS.join(', ')}`);
    const unit = typeof department === 'string' ? normalizeDepartment(department) : undefined;
    if (department !== undefined && !unit) bad('department must be a department code such as eng or eng/mech');
    if (q !== undefined && (typeof q !== 'string' || q.length > 100)) bad('q must be one text of at most 100 characters');
    const rows = await desk.search(who(ctx), {
      text: typeof q === 'string' ? q.normalize('NFKC').trim() || undefined : undefined,
      status: status as AccountStatus | undefined,
      affiliation: affiliation as Affiliation | undefined,
      department: unit,
      limit,
      after: typeof after === 'string' ? after : undefined,
    });
    ctx.body = { accounts: rows.map(accountJson) };
  });

  router.get('/accounts/:commonId', async (ctx) => {
    const { account, factors, education, identityLink } = await desk.details(who(ctx), ctx.params.commonId);
    ctx.body = {
      ...accountJson(account),
      // Factors are listed by kind and label; their secrets never leave the server.
      factors: factors.map((f) => ({
        kind: f.kind,
        label: f.label,
        default: f.is_default,
        createdAt: new Date(f.created_at).toISOString(),
        lastUsedAt: f.last_used_at ? new Date(f.last_used_at).toISOString() : null,
      })),
      education,
      // The identity link is shown by its date only: the pairwise identifier is of no use to operators.
      identityLink: identityLink ? { linkedAt: identityLink.linkedAt.toISOString() } : null,
    };
  });

  // requireMfa, and the fields of account-fields.ts (null clears one). All are checked before any is written.
  router.patch('/accounts/:commonId', async (ctx) => {
    const b = body(ctx);
    refuseUnknown(b, (key) => key === 'requireMfa' || ACCOUNT_FIELD_KEYS.has(key), `the fields are requireMfa, ${FIELD_LIST}`);
    if (b.requireMfa !== undefined && typeof b.requireMfa !== 'boolean') bad('requireMfa must be true or false');
    if (Object.keys(b).length === 0) bad(`say what to change: requireMfa, ${FIELD_LIST}`);
    const { requireMfa, ...fields } = b;
    // The body names at least one change (above), so one of the two sets the account.
    let account: AccountRow | undefined;
    if (Object.keys(fields).length) account = (await desk.updateProfile(who(ctx), ctx.params.commonId, fields)).account;
    if (typeof requireMfa === 'boolean') account = await desk.setMfaRequired(who(ctx), ctx.params.commonId, requireMfa);
    ctx.body = accountJson(account!);
  });

  const justification = (b: Record<string, unknown>) => ({ reason: textOf(b, 'reason'), checked: textOf(b, 'checked'), by: textOf(b, 'by') });

  router.post('/accounts/:commonId/reset-mfa', async (ctx) => {
    const { account, removed } = await desk.resetMfa(who(ctx), ctx.params.commonId, justification(body(ctx)));
    ctx.body = { ...accountJson(account), removedFactors: removed };
  });

  // Which identity document was checked, and by whom, go to the audit record.
  router.post('/accounts/:commonId/reissue-password', async (ctx) => {
    const { account, initialPassword } = await desk.reissuePassword(who(ctx), ctx.params.commonId, justification(body(ctx)));
    ctx.body = { commonId: account.common_id, initialPassword, account: accountJson(account) };
  });

  // Revoke now, or on a date (the lifecycle job applies it then), with an optional reason.
  router.post('/accounts/:commonId/revoke', async (ctx) => {
    const b = body(ctx);
    const reason = revocationReason(b.reason);
    const on = b.on === undefined ? undefined : revocationTime(b.on, deps.timeZone);
    ctx.body = accountJson(await desk.revoke(who(ctx), ctx.params.commonId, { on, reason }));
  });

  router.delete('/accounts/:commonId/revocation', async (ctx) => {
    ctx.body = accountJson(await desk.cancelRevocation(who(ctx), ctx.params.commonId));
  });

  router.get('/revocations', async (ctx) => {
    const limit = limitOf(ctx, 1000);
    const until = ctx.query.until === undefined ? undefined : revocationTime(ctx.query.until, deps.timeZone, 'until');
    const rows = await desk.scheduledRevocations(who(ctx), { until, limit, after: typeof ctx.query.after === 'string' ? ctx.query.after : undefined });
    ctx.body = { accounts: rows.map(accountJson) };
  });

  router.post('/accounts/:commonId/unlink-idv', async (ctx) => {
    ctx.body = accountJson(await desk.unlinkIdentity(who(ctx), ctx.params.commonId));
  });

  const statusActions = { suspend: 'suspended', activate: 'active' } as const;
  for (const [action, status] of Object.entries(statusActions)) {
    router.post(`/accounts/:commonId/${action}`, async (ctx) => {
      ctx.body = accountJson(await desk.setStatus(who(ctx), ctx.params.commonId, status, justification(body(ctx))));
    });
  }

  router.post('/accounts/:commonId/unlock', async (ctx) => {
    ctx.body = accountJson(await desk.unlock(who(ctx), ctx.params.commonId));
  });

  router.post('/clients', async (ctx) => {
    authorize(who(ctx), 'client.write');
    const b = body(ctx);
    refuseUnknown(b, (key) => SETTING_KEYS.has(key) || key === 'protocol', `the settings are protocol, ${[...SETTING_KEYS].join(', ')}`);
    if (b.protocol !== undefined && b.protocol !== 'oidc' && b.protocol !== 'saml') bad('protocol must be "oidc" or "saml"');
    const input = { ...clientInput(b), protocol: b.protocol === 'saml' ? ('saml' as const) : ('oidc' as const) };
    const { client, clientSecret } = await recorded(async () => {
      const created = await deps.clients.create(input);
      await audit(ctx, 'client.created', null, { clientId: created.client.clientId });
      return created;
    });
    ctx.status = 201;
    ctx.body = { clientId: client.clientId, clientSecret, client };
  });

  router.get('/clients', async (ctx) => {
    authorize(who(ctx), 'client.read');
    ctx.body = { clients: await deps.clients.list() };
  });

  router.get('/clients/:clientId', async (ctx) => {
    authorize(who(ctx), 'client.read');
    const client = await deps.clients.show(ctx.params.clientId);
    const rules = await deps.accountRules.list(client.clientId);
    ctx.body = { ...client, accountRules: rules.map((r) => ({ commonId: r.common_id, effect: r.effect })) };
  });

  // Explicit allow and deny entries; they apply to the very next request on every node.
  router.post('/clients/:clientId/accounts', async (ctx) => {
    authorize(who(ctx), 'client.write');
    const b = body(ctx);
    const client = await deps.clients.show(ctx.params.clientId);
    const commonId = textOf(b, 'commonId') ?? '';
    if (!COMMON_ID_PATTERN.test(commonId)) bad('commonId must be 10 digits');
    if (b.effect !== 'allow' && b.effect !== 'deny') bad('effect must be allow or deny');
    const effect = b.effect;
    await recorded(async () => {
      await deps.accountRules.set(client.clientId, commonId, effect);
      await audit(ctx, `client.account_${effect === 'allow' ? 'allowed' : 'denied'}`, null, { clientId: client.clientId, commonId });
    });
    ctx.body = { clientId: client.clientId, commonId, effect: b.effect };
  });

  router.delete('/clients/:clientId/accounts/:commonId', async (ctx) => {
    authorize(who(ctx), 'client.write');
    const client = await deps.clients.show(ctx.params.clientId);
    await recorded(async () => {
      if (!(await deps.accountRules.remove(client.clientId, ctx.params.commonId))) throw new DomainError('rule_not_found', `${excerpt(ctx.params.commonId)} is on no list of ${client.clientId}`);
      await audit(ctx, 'client.account_unlisted', null, { clientId: client.clientId, commonId: ctx.params.commonId });
    });
    ctx.status = 204;
  });

  router.post('/education', async (ctx) => {
    const b = body(ctx);
    const { account, ...result } = await desk.recordEducation(who(ctx), textOf(b, 'commonId') ?? '', b.year, b.passedOn);
    ctx.body = { commonId: account.common_id, ...result };
  });

  // Akamon's own first-party clients are registered by the server itself and must keep working.
  router.use('/clients/:clientId', async (ctx, next) => {
    if (FIRST_PARTY_CLIENT_IDS.includes(ctx.params.clientId) && (ctx.method === 'PATCH' || ctx.method === 'DELETE')) {
      throw new DomainError('protected_client', `${excerpt(ctx.params.clientId)} is one of Akamon's own pages and is managed by the server`);
    }
    await next();
  });

  router.patch('/clients/:clientId', async (ctx) => {
    authorize(who(ctx), 'client.write');
    const b = body(ctx);
    refuseUnknown(b, (key) => SETTING_KEYS.has(key) || key === 'rotateSecret', `the settings are ${[...SETTING_KEYS].join(', ')}, and rotateSecret`);
    if (b.rotateSecret !== undefined && typeof b.rotateSecret !== 'boolean') bad('rotateSecret must be a boolean');
    const { client, clientSecret } = await recorded(async () => {
      const updated = await deps.clients.update(ctx.params.clientId, { ...clientInput(b), rotateSecret: b.rotateSecret === true });
      await audit(ctx, 'client.updated', null, { clientId: updated.client.clientId, secretRotated: updated.clientSecret !== null });
      return updated;
    });
    ctx.body = { clientId: client.clientId, clientSecret, client };
  });

  router.delete('/clients/:clientId', async (ctx) => {
    authorize(who(ctx), 'client.write');
    await recorded(async () => {
      await deps.clients.delete(ctx.params.clientId);
      await audit(ctx, 'client.deleted', null, { clientId: ctx.params.clientId });
    });
    ctx.status = 204;
  });

  router.post('/tokens', async (ctx) => {
    authorize(who(ctx), 'token.load');
    const b = body(ctx);
    const token = await recorded(async () => {
      const added = await deps.tokens.add({ serial: b.serial, secret: b.secret, digits: b.digits, period: b.period });
      await audit(ctx, 'token.loaded', null, { serial: added.serial });
      return added;
    });
    ctx.status = 201;
    ctx.body = token;
  });

  router.get('/tokens', async (ctx) => {
    authorize(who(ctx), 'token.read');
    ctx.body = { tokens: await deps.tokens.list() };
  });

  router.post('/tokens/:serial/assign', async (ctx) => {
    const account = await desk.lendToken(who(ctx), ctx.params.serial, textOf(body(ctx), 'commonId') ?? '');
    ctx.body = { serial: ctx.params.serial, assignedTo: account.common_id };
  });

  router.post('/tokens/:serial/unassign', async (ctx) => {
    await desk.collectToken(who(ctx), ctx.params.serial);
    ctx.body = { serial: ctx.params.serial, assignedTo: null };
  });

  router.post('/keys/rotate', async (ctx) => {
    authorize(who(ctx), 'keys.rotate');
    // The new keys and their record are one transaction (the key pairs are made before it opens).
    const kids = await deps.rotateKeys((published) => audit(ctx, 'keys.rotated', null, { kids: published }));
    ctx.body = { kids };
  });

  router.get('/audit', async (ctx) => {
    const limit = limitOf(ctx, 10000);
    const rows = await desk.auditTrail(who(ctx), { commonId: typeof ctx.query.account === 'string' ? ctx.query.account : undefined, limit });
    ctx.body = {
      events: rows.map((r) => ({ at: new Date(r.occurred_at).toISOString(), actor: r.actor, action: r.action, commonId: r.common_id, details: r.details })),
    };
  });

  router.get('/signins', async (ctx) => {
    const { account, since } = ctx.query;
    const limit = limitOf(ctx, 10000);
    let sinceDate: Date | undefined;
    if (since !== undefined) {
      sinceDate = typeof since === 'string' ? new Date(since) : undefined;
      if (!sinceDate || !inCalendarRange(sinceDate)) bad('since must be one date of the years 1 to 9999, such as 2026-04-01 or 2026-04-01T09:00:00Z');
    }
    const rows = await desk.signins(who(ctx), { commonId: typeof account === 'string' ? account : undefined, since: sinceDate, limit });
    ctx.body = {
      signins: rows.map((r) => ({
        at: new Date(r.occurred_at).toISOString(),
        commonId: r.common_id,
        clientId: r.client_id,
        ip: r.ip,
        userAgent: r.user_agent,
        result: r.result,
        reason: r.reason,
      })),
    };
  });

  // Operators: API tokens (each shown once) and the people who may use the console.
  router.post('/operators/tokens', async (ctx) => {
    const b = body(ctx);
    refuseUnknown(
      b,
      (key) => ['name', 'role', 'departments', 'affiliations', 'wholeUniversity', 'expiresInDays'].includes(key),
      'a token has name, role, departments, affiliations, wholeUniversity, expiresInDays',
    );
    const { role, scope } = roleAndScopeOf(b);
    const name = tokenName(b.name);
    const expiresAt = tokenExpiry(b.expiresInDays ?? OPERATOR_TOKEN_DEFAULT_DAYS, new Date());
    const token = await desk.createApiToken(who(ctx), { name, role, scope, expiresAt });
    ctx.status = 201;
    ctx.body = { token, name, role, scope, expiresAt: expiresAt.toISOString() };
  });

  router.get('/operators/tokens', async (ctx) => {
    const rows = await desk.listApiTokens(who(ctx));
    ctx.body = {
      tokens: rows.map((t) => ({
        id: t.id,
        name: t.name,
        role: t.role,
        departments: t.departments,
        affiliations: t.affiliations,
        createdAt: new Date(t.created_at).toISOString(),
        createdBy: t.created_by,
        expiresAt: t.expires_at ? new Date(t.expires_at).toISOString() : null,
        lastUsedAt: t.last_used_at ? new Date(t.last_used_at).toISOString() : null,
        revokedAt: t.revoked_at ? new Date(t.revoked_at).toISOString() : null,
      })),
    };
  });

  router.delete('/operators/tokens/:id', async (ctx) => {
    await desk.revokeApiToken(who(ctx), apiTokenId(ctx.params.id));
    ctx.status = 204;
  });

  router.put('/operators/people/:commonId', async (ctx) => {
    const b = body(ctx);
    refuseUnknown(b, (key) => ['role', 'departments', 'affiliations', 'wholeUniversity'].includes(key), 'a console role has role, departments, affiliations, wholeUniversity');
    const { role, scope } = roleAndScopeOf(b, true);
    const account = await desk.grantConsoleRole(who(ctx), ctx.params.commonId, role, scope);
    ctx.body = { commonId: account.common_id, name: account.name, role, scope };
  });

  router.delete('/operators/people/:commonId', async (ctx) => {
    await desk.withdrawConsoleRole(who(ctx), ctx.params.commonId);
    ctx.status = 204;
  });

  router.get('/operators/people', async (ctx) => {
    const rows = await desk.listConsoleRoles(who(ctx));
    ctx.body = {
      people: rows.map((p) => ({
        commonId: p.common_id,
        name: p.name,
        role: p.role,
        departments: p.departments,
        affiliations: p.affiliations,
        grantedBy: p.granted_by,
        grantedAt: new Date(p.granted_at).toISOString(),
      })),
    };
  });

  // The dashboard's figures as JSON (the console's /console/dashboard shows the same); 'dashboard.read'.
  router.get('/dashboard', async (ctx) => {
    ctx.body = await deps.dashboard.figures(who(ctx));
  });

  // Anything else under the prefix is answered in JSON like the rest (after the token check, so
  // the API's shape is not told to callers without one): 405 with Allow on a path served for
  // other methods, else 404.
  router.all('/{*rest}', (ctx) => {
    const methods = [...new Set(router.match(ctx.path, ctx.method).path.flatMap((layer) => (layer === fallback ? [] : layer.methods)))];
    if (methods.length === 0) throw new DomainError('no_such_endpoint', `no endpoint ${ctx.method} ${excerpt(ctx.path)}`);
    ctx.set('Allow', methods.join(', '));
    throw new DomainError('method_not_allowed', `${ctx.method} is not allowed on ${excerpt(ctx.path)}; allowed: ${methods.join(', ')}`);
  });
  const fallback = router.stack.at(-1);

  return router;
}
