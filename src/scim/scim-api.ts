import Router from '@koa/router';
import { sql } from 'kysely';
import type { Context, Next } from 'koa';
import type { AccountInput } from '../account/account-input.ts';
import type { AccountRow, AccountStore } from '../account/account.store.ts';
import type { Database } from '../db/database.ts';
import { answerTo } from '../http/error-map.ts';
import { bearerOperator } from '../http/operator-bearer.ts';
import type { HelpDesk } from '../operator/help-desk.ts';
import type { OperatorStore } from '../operator/operator.store.ts';
import { authorize, inScope, type Principal } from '../operator/permissions.ts';
import type { Clock } from '../shared/clock.ts';
import { DomainError, RetryLaterError } from '../shared/errors.ts';
import { isUuid } from '../shared/uuid.ts';
import { invalidValue, ScimError } from './scim-error.ts';
import { SCIM_CONTENT_TYPE, scimErrorBody } from '../http/scim-answer.ts';
import { sendsOtherThanJson } from '../http/input-guard.ts';
import { excerpt } from '../shared/text.ts';
import { member, parseFilter } from './scim-filter.ts';
import { applyPatch } from './scim-patch.ts';
import { filterCondition } from './scim-query.ts';
import { AKAMON_SCHEMA, LIST_SCHEMA, SCHEMA_IDS, schemaJson, serviceProviderConfig, userResourceType } from './scim-schema.ts';
import { etagOf, isEmpty, plainUserName, plan, type Plan, readUser, userResource as resourceOf, type UserState } from './scim-user.ts';
import { SCIM_MAX_RESULTS } from '../config/defaults.ts';

export interface ScimApiDeps {
  operators: OperatorStore;
  helpDesk: HelpDesk;
  /** Finds an account by its SCIM id (the uuid) before the help desk checks role and scope. */
  accounts: AccountStore;
  clock: Clock;
  issuer: string;
  /** AKAMON_REALM_SUFFIX: `0123456789@<realm>` in a userName names the account 0123456789. */
  realm: string | undefined;
  timeZone: string;
  /** AKAMON_SCIM_DELETE_GRACE_DAYS: 0 revokes at once on DELETE, more schedules the revocation. */
  deleteGraceDays: number;
  /** One transaction for a write's steps (Database#unitOfWork): all of them, or none. */
  unitOfWork: Database['unitOfWork'];
  /** Locks an account's sign-in sessions until the write's transaction ends (OidcPayloadStore#lockSessionsOf). */
  lockSessionsOf: (accountId: string) => Promise<void>;
}

export const SCIM_PREFIX = '/scim/v2';
const DEFAULT_COUNT = 100;
/** Why the help desk's audit trail shows a change: the feeding system said so. */
const BY_PROVISIONING = { reason: 'provisioning' };

function answerError(ctx: Context, error: unknown): void {
  let answer: ScimError;
  if (error instanceof ScimError) answer = error;
  else if (error instanceof DomainError) {
    const { status } = answerTo(ctx, error);
    if (status >= 500 && !(error instanceof RetryLaterError)) ctx.state.log.error({ err: error }, 'scim request failed');
    answer = new ScimError(status, error.code === 'account_exists' ? 'uniqueness' : status === 400 ? 'invalidValue' : undefined, error.message);
  } else {
    const status = (error as { status?: number }).status;
    if (status && status >= 400 && status < 500) answer = new ScimError(status, undefined, (error as Error).message);
    else {
      ctx.state.log.error({ err: error }, 'scim request failed');
      answer = new ScimError(500, undefined, 'the request could not be completed; try again later');
    }
  }
  ctx.status = answer.status;
  ctx.body = scimErrorBody(answer.status, answer.scimType, answer.message);
}

/** The JSON object of a POST, PUT or PATCH; the input guard has already parsed it (and refused bad JSON). */
function bodyOf(ctx: Context): Record<string, unknown> {
  const body = ctx.request.body;
  if (!ctx.request.is('json', '+json') || body === undefined) throw new ScimError(400, 'invalidSyntax', 'send the body as JSON with Content-Type: application/scim+json');
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ScimError(400, 'invalidSyntax', 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

/** startIndex and count (RFC 7644 3.4.2.4): 1-based; a count below 0 is 0, above the maximum the maximum. */
function pageOf(ctx: Context): { offset: number; limit: number } {
  const number = (name: string, fallback: number) => {
    const raw = ctx.query[name];
    if (raw === undefined) return fallback;
    const value = typeof raw === 'string' && /^-?\d{1,9}$/.test(raw.trim()) ? Number(raw) : Number.NaN;
    return Number.isSafeInteger(value) ? value : invalidValue(`${name} must be a whole number`);
  };
  return { offset: Math.max(number('startIndex', 1), 1) - 1, limit: Math.min(Math.max(number('count', DEFAULT_COUNT), 0), SCIM_MAX_RESULTS) };
}

/** If-Match (RFC 7644 3.14): the version the client read must still be the account's. */
function checkVersion(ctx: Context, row: AccountRow): void {
  const header = ctx.get('if-match');
  if (!header) return;
  const current = etagOf(row);
  const weak = (tag: string) => tag.replace(/^W\//, '');
  const given = header.split(',').map((tag) => tag.trim());
  if (!given.some((tag) => tag === '*' || weak(tag) === weak(current))) {
    throw new ScimError(412, undefined, `the User has changed since that version was read (it is ${current} now); GET it again`);
  }
}

/**
 * The SCIM 2.0 service provider (RFC 7643, RFC 7644) for the student and personnel systems: Users
 * only, each an Akamon account whose SCIM id is its uuid. Every request carries an API token; every
 * read and write goes through the HelpDesk, so role, scope and the audit trail are those of the
 * admin API, and an account outside the token's scope is not found and never listed.
 */
export function scimApi(deps: ScimApiDeps): Router {
  const router = new Router({ prefix: '/scim' });
  const base = `${deps.issuer}${SCIM_PREFIX}`;
  const desk = deps.helpDesk;
  const who = (ctx: Context): Principal => ctx.state.principal;
  const userResource = (row: AccountRow) => resourceOf(row, base);
  const readOptions = (requireSchemas: boolean) => ({ realm: deps.realm, timeZone: deps.timeZone, requireSchemas });

  router.use(async (ctx: Context, next: Next) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      const principal = await bearerOperator(ctx, deps.operators);
      if (!principal) {
        ctx.set('WWW-Authenticate', 'Bearer realm="akamon-scim"');
        throw new ScimError(401, undefined, 'an API token of the provisioning role is required (Authorization: Bearer ...)');
      }
      ctx.state.principal = principal;
      if (sendsOtherThanJson(ctx)) throw new ScimError(415, undefined, 'send the body as JSON, with Content-Type: application/scim+json');
      await next();
      if (ctx.method !== 'GET') ctx.state.log.info({ operator: principal.actor, role: principal.role, method: ctx.method, path: ctx.path, status: ctx.status }, 'scim request');
    } catch (error) {
      answerError(ctx, error);
    }
    if (ctx.body !== null && typeof ctx.body === 'object') ctx.type = SCIM_CONTENT_TYPE;
  });

  /** The account with this SCIM id, when the token's role may `permission` and the account is in its scope. */
  const found = async (ctx: Context, permission: 'account.read' | 'account.update' | 'account.status'): Promise<AccountRow> => {
    const id = ctx.params.id!;
    // The role first: a token that may not read accounts learns nothing of which ids exist.
    authorize(who(ctx), permission);
    const writing = permission !== 'account.read';
    // A write locks the account's sessions before its row: one that suspends or revokes ends them,
    // and the account home holds one while it changes the row; in the other order the two deadlock.
    if (writing && isUuid(id)) await deps.lockSessionsOf(id);
    const row = isUuid(id) ? await deps.accounts.findById(id, writing) : undefined;
    const notFound = new ScimError(404, undefined, `no User with id ${excerpt(id)}`);
    if (!row) throw notFound;
    try {
      return await desk.account(who(ctx), row.common_id, permission);
    } catch (error) {
      // Out of scope reads as absent, without the Common ID the help desk's text would name.
      if (error instanceof DomainError && error.code === 'account_not_found') throw notFound;
      throw error;
    }
  };

  const answerUser = (ctx: Context, row: AccountRow, status = 200) => {
    ctx.status = status;
    ctx.set('ETag', etagOf(row));
    if (status === 201) ctx.set('Location', `${base}/Users/${row.id}`);
    ctx.body = userResource(row);
  };

  /**
   * A write to the User the request names, as one transaction: its row is locked before If-Match
   * (RFC 7644 3.14) is checked, so a change made between the check and the write cannot be written
   * over, and the steps of the write (profile, core, status, revocation) land together or not at all.
   */
  const writeUser = (ctx: Context, permission: 'account.update' | 'account.status', write: (current: AccountRow) => Promise<void>) =>
    deps.unitOfWork(async () => {
      const current = await found(ctx, permission);
      checkVersion(ctx, current);
      await write(current);
    });

  /** Applies a plan through the help desk (role, scope and audit), every check having been made before the first write. */
  const carryOut = async (ctx: Context, current: AccountRow, change: Plan): Promise<AccountRow> => {
    const principal = who(ctx);
    const commonId = current.common_id;
    if (!inScope(principal.scope, change.after)) throw new ScimError(403, undefined, 'that change would move the account outside the scope of this token');
    if (Object.keys(change.profile).length) await desk.updateProfile(principal, commonId, change.profile);
    if (Object.keys(change.core).length) await desk.updateCore(principal, commonId, change.core);
    if (change.status) await desk.setStatus(principal, commonId, change.status, BY_PROVISIONING);
    if (change.affiliationEnd === null) await desk.cancelRevocation(principal, commonId);
    else if (change.affiliationEnd) await desk.revoke(principal, commonId, { on: change.affiliationEnd, reason: 'end_of_affiliation' });
    return (await deps.accounts.findById(current.id))!;
  };

  /**
   * A create for a userName that exists: a retry (after a timeout, or by a second node of the
   * feeding system) answers the account as it is, with 200 since nothing was created; a different
   * person under the same Common ID is a conflict, answered the same whether or not the existing
   * account is in the token's scope. (That the Common ID is taken cannot be hidden from a create:
   * Common IDs are unique and issued centrally.)
   */
  const replay = async (ctx: Context, wanted: UserState): Promise<void> => {
    const taken = new ScimError(409, 'uniqueness', `userName ${wanted.commonId} is already taken by another User; find it with filter=userName eq "${wanted.commonId}" and PUT or PATCH it`);
    // Through the help desk: the answer is a look-up like any other (scope and budget).
    const existing = await desk.account(who(ctx), wanted.commonId).catch((error: unknown) => {
      if (error instanceof DomainError && error.code === 'account_not_found') return undefined;
      throw error;
    });
    if (!existing) throw taken;
    const sameExternal = wanted.core.externalId !== null && wanted.core.externalId === existing.external_id;
    let unchanged = false;
    try {
      unchanged = isEmpty(plan(existing, wanted, deps.clock.now()));
    } catch (error) {
      if (!(error instanceof ScimError || error instanceof DomainError)) throw error;
    }
    if (!sameExternal && !unchanged) throw taken;
    answerUser(ctx, existing);
  };

  router.get('/v2/ServiceProviderConfig', (ctx) => {
    ctx.body = serviceProviderConfig(base, SCIM_MAX_RESULTS);
  });

  router.get('/v2/ResourceTypes', (ctx) => {
    ctx.body = { schemas: [LIST_SCHEMA], totalResults: 1, startIndex: 1, itemsPerPage: 1, Resources: [userResourceType(base)] };
  });

  router.get('/v2/ResourceTypes/:id', (ctx) => {
    if (ctx.params.id !== 'User') throw new ScimError(404, undefined, 'the one resource type is User');
    ctx.body = userResourceType(base);
  });

  router.get('/v2/Schemas', (ctx) => {
    const resources = SCHEMA_IDS.map((id) => schemaJson(id, base));
    ctx.body = { schemas: [LIST_SCHEMA], totalResults: resources.length, startIndex: 1, itemsPerPage: resources.length, Resources: resources };
  });

  router.get('/v2/Schemas/:id', (ctx) => {
    if (!SCHEMA_IDS.includes(ctx.params.id!)) throw new ScimError(404, undefined, `no schema ${excerpt(ctx.params.id!)}`);
    ctx.body = schemaJson(ctx.params.id!, base);
  });

  router.get('/v2/Users', async (ctx) => {
    const { filter } = ctx.query;
    if (filter !== undefined && typeof filter !== 'string') throw new ScimError(400, 'invalidFilter', 'give one filter');
    const where = filter ? filterCondition(parseFilter(filter), (name) => plainUserName(name, deps.realm)) : sql<boolean>`true`;
    const { offset, limit } = pageOf(ctx);
    const { total, rows } = await desk.page(who(ctx), { where, offset, limit });
    ctx.body = { schemas: [LIST_SCHEMA], totalResults: total, startIndex: offset + 1, itemsPerPage: rows.length, Resources: rows.map(userResource) };
  });

  router.get('/v2/Users/:id', async (ctx) => {
    const row = await found(ctx, 'account.read');
    if (ctx.get('if-none-match') === etagOf(row)) {
      ctx.status = 304;
      return;
    }
    answerUser(ctx, row);
  });

  router.post('/v2/Users', async (ctx) => {
    const wanted = readUser(bodyOf(ctx), readOptions(true));
    if (wanted.affiliationEnd && wanted.affiliationEnd.getTime() < deps.clock.now().getTime() - 86_400_000) invalidValue('affiliationEnd has passed');
    const { core } = wanted;
    const input: AccountInput = {
      commonId: wanted.commonId,
      name: String(core.name),
      affiliation: String(core.affiliation),
      email: core.email as string | null,
      externalId: core.externalId as string | null,
      profile: wanted.profile,
    };
    authorize(who(ctx), 'account.create');
    // A re-sent create (the usual retry) is answered without a hash; a create that races it still meets the insert's conflict.
    if (await deps.accounts.findByCommonId(wanted.commonId)) return replay(ctx, wanted);
    // The account and its status and end of affiliation are one transaction: a create that fails
    // half-way leaves nothing, and its retry creates it whole (not a 409 for a half-made account).
    // The initial password's hash is made before it, not while it holds a connection.
    const initial = await desk.initialPassword(who(ctx), input);
    const create = async () => {
      const { account } = await desk.create(who(ctx), input, initial);
      // The initial password is dropped unseen: the person gets a letter from the office or resets by email.
      if (wanted.active === false) await desk.setStatus(who(ctx), account.common_id, 'suspended', BY_PROVISIONING);
      if (wanted.affiliationEnd) await desk.revoke(who(ctx), account.common_id, { on: wanted.affiliationEnd, reason: 'end_of_affiliation' });
      return (await deps.accounts.findById(account.id))!;
    };
    try {
      answerUser(ctx, await deps.unitOfWork(create), 201);
    } catch (error) {
      if (error instanceof DomainError && error.code === 'account_exists') return replay(ctx, wanted);
      throw error;
    }
  });

  router.put('/v2/Users/:id', async (ctx) => {
    const wanted = readUser(bodyOf(ctx), readOptions(true));
    await writeUser(ctx, 'account.update', async (current) => answerUser(ctx, await carryOut(ctx, current, plan(current, wanted, deps.clock.now()))));
  });

  router.patch('/v2/Users/:id', (ctx) =>
    writeUser(ctx, 'account.update', async (current) => {
      const patched = applyPatch(userResource(current), bodyOf(ctx));
      // displayName and name.formatted are one value: a PATCH that changed only displayName changed the name.
      const name = (member(patched, 'name') ?? {}) as Record<string, unknown>;
      const displayName = member(patched, 'displayName');
      if (typeof displayName === 'string' && displayName !== current.name && member(name, 'formatted') === current.name) patched.name = { ...name, formatted: displayName };
      // The resource held affiliationEnd if one was scheduled: without it now, the PATCH removed it.
      const extension = (patched[AKAMON_SCHEMA] ?? {}) as Record<string, unknown>;
      if (!Object.keys(extension).some((key) => key.toLowerCase() === 'affiliationend')) patched[AKAMON_SCHEMA] = { ...extension, affiliationEnd: null };
      const wanted = readUser(patched, readOptions(false));
      answerUser(ctx, await carryOut(ctx, current, plan(current, wanted, deps.clock.now())));
    }),
  );

  // DELETE is revocation, never erasure: the account and its audit trail stay, shown with active false.
  router.delete('/v2/Users/:id', (ctx) =>
    writeUser(ctx, 'account.status', async (current) => {
      ctx.status = 204;
      if (current.status === 'revoked') return;
      if (deps.deleteGraceDays === 0) {
        await desk.revoke(who(ctx), current.common_id, { reason: 'deprovisioned' });
        return;
      }
      const on = new Date(deps.clock.now().getTime() + deps.deleteGraceDays * 86_400_000);
      // A revocation already due sooner stays: a repeated DELETE never postpones it.
      if (current.revoke_at && new Date(current.revoke_at).getTime() <= on.getTime()) return;
      await desk.revoke(who(ctx), current.common_id, { on, reason: 'deprovisioned' });
    }),
  );

  // Anything else under /scim: another protocol version, or no such endpoint.
  router.all('/{*rest}', (ctx) => {
    if (ctx.path !== SCIM_PREFIX && !ctx.path.startsWith(`${SCIM_PREFIX}/`)) throw new ScimError(400, 'invalidVers', `this server speaks SCIM 2.0 at ${SCIM_PREFIX}`);
    throw new ScimError(404, undefined, `no endpoint ${ctx.method} ${excerpt(ctx.path)}; see ${SCIM_PREFIX}/ResourceTypes`);
  });

  return router;
}
