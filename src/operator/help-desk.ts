import type { Expression, SqlBool } from 'kysely';
import type { AccountInput, AccountService, CoreField, InitialPassword } from '../account/account.service.ts';
import { accountNotFound, validateAccountInput } from '../account/account.service.ts';
import { CORE_FIELDS } from '../account/account-input.ts';
import type { AccountRow, AccountStore } from '../account/account.store.ts';
import { normalizeDepartment } from '../account/department.ts';
import type { Revocations } from '../account/revocation.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { SigninLog } from '../audit/signin-log.ts';
import type { Database } from '../db/database.ts';
import type { AccountStatus, Affiliation } from '../db/schema.ts';
import type { EducationService } from '../education/education.service.ts';
import type { IdentityVerification } from '../idv/identity-verification.ts';
import type { MfaService } from '../mfa/mfa.service.ts';
import type { TokenService } from '../mfa/token.service.ts';
import { DomainError, RetryLaterError } from '../shared/errors.ts';
import type { LoginThrottle } from '../throttle/login-throttle.ts';
import { OPERATOR_LOOKUP_ROWS, OPERATOR_LOOKUPS } from '../config/defaults.ts';
import type { OperatorStore } from './operator.store.ts';
import { authorize, inScope, type Permission, type Principal, PERSON_ROLES, type Role, type Scope } from './permissions.ts';
import { scopeCondition } from './scope-condition.ts';

export interface HelpDeskDeps {
  accountService: AccountService;
  accounts: AccountStore;
  mfa: MfaService;
  tokens: TokenService;
  audit: AuditLog;
  signinLog: SigninLog;
  education: EducationService;
  revocations: Revocations;
  idv: IdentityVerification;
  operators: OperatorStore;
  throttle: LoginThrottle;
  /** One transaction for a task's change and its audit record (Database#unitOfWork). */
  unitOfWork: Database['unitOfWork'];
}

/** Why a dangerous action was taken, and which identity document was checked, as the audit keeps them. */
export interface Justification {
  reason?: string;
  /** The identity document checked at the counter (student ID card, staff card, passport ...). */
  checked?: string;
}

const clip = (text: string | undefined) => (text ?? '').trim().slice(0, 200);

/** The justification as the audit keeps it: what was said, each at most 200 characters, and nothing empty. */
function said(why: Justification & { by?: string }): Record<string, string> {
  return Object.fromEntries(Object.entries(why).flatMap(([key, value]) => (typeof value === 'string' && clip(value) ? [[key, clip(value)]] : [])));
}

/**
 * Every operator task on accounts, for the admin API (and so the CLI) and the console alike: each
 * checks the role's permission and the scope, acts, and writes the audit record naming the
 * operator, so no front end can forget one of the three. The change and its record are one unit
 * of work: no fault leaves a change the audit does not show. An account outside the scope is answered
 * exactly as one that does not exist (the same code and text), so offices learn nothing of others'.
 */
export class HelpDesk {
  readonly #deps: HelpDeskDeps;

  constructor(deps: HelpDeskDeps) {
    this.#deps = deps;
  }

  #audit(principal: Principal, action: string, accountId: string | null, details: Record<string, unknown> = {}) {
    return this.#deps.audit.record({ actor: principal.actor, action, accountId, details });
  }

  /** A change and its audit record, kept together or not at all. Hashing comes before it, never inside. */
  #recorded<T>(change: () => Promise<T>): Promise<T> {
    return this.#deps.unitOfWork(change);
  }

  /**
   * Each look-up takes from the operator's budget, and a list one per OPERATOR_LOOKUP_ROWS rows it
   * answers (charged once the rows are known, before they are answered), so no session or token can
   * copy the directory, whichever way it reads it.
   */
  async #lookup(principal: Principal, rows = 1): Promise<void> {
    const cost = Math.max(1, Math.ceil(rows / OPERATOR_LOOKUP_ROWS));
    const { waitSeconds } = await this.#deps.throttle.takeFromBucket(`operator-lookup:${principal.actor}`, OPERATOR_LOOKUPS, cost);
    if (waitSeconds > 0) throw new RetryLaterError('rate_limited', `too many account look-ups; try again in ${waitSeconds} s`, waitSeconds);
  }

  /** The account, when the role may `permission` and the account is in scope; else the error. */
  async account(principal: Principal, commonId: string, permission: Permission = 'account.read'): Promise<AccountRow> {
    authorize(principal, permission);
    if (permission === 'account.read') await this.#lookup(principal);
    const account = await this.#deps.accountService.get(commonId);
    if (!inScope(principal.scope, account)) throw accountNotFound(commonId);
    return account;
  }

  /** Accounts in scope, by the start of a Common ID or a part of a name, and the list filters. */
  async search(principal: Principal, filter: { text?: string; status?: AccountStatus; affiliation?: Affiliation; department?: string; limit: number; after?: string }): Promise<AccountRow[]> {
    authorize(principal, 'account.read');
    await this.#lookup(principal);
    return this.#listed(principal, await this.#deps.accounts.list({ ...filter, within: principal.scope ? scopeCondition(principal.scope) : undefined }));
  }

  /** Accounts with a revocation scheduled (up to `until`), of the scope, soonest first. */
  async scheduledRevocations(principal: Principal, filter: { until?: Date; limit: number; after?: string }): Promise<AccountRow[]> {
    authorize(principal, 'account.read');
    await this.#lookup(principal);
    return this.#listed(principal, await this.#deps.revocations.scheduled({ ...filter, within: scopeCondition(principal.scope) }));
  }

  /** A list's rows beyond the first look-up's share are charged before they are answered. */
  async #listed<T>(principal: Principal, rows: T[]): Promise<T[]> {
    if (rows.length > OPERATOR_LOOKUP_ROWS) await this.#lookup(principal, rows.length - OPERATOR_LOOKUP_ROWS);
    return rows;
  }

  /** What the help desk sees of an account besides its row: methods, education, identity link. */
  async details(principal: Principal, commonId: string) {
    const account = await this.account(principal, commonId);
    const year = this.#deps.education.currentYear();
    const [factors, passedOn, link] = await Promise.all([this.#deps.mfa.factors(account.id), this.#deps.education.passedThisYear(account.id), this.#deps.idv.linkOf(account.id)]);
    return { account, factors, education: { year, passedOn: passedOn ?? null }, identityLink: link ? { linkedAt: new Date(link.linked_at) } : null };
  }

  /**
   * An initial password for a create made inside a transaction (SCIM), made only for a create that
   * would be taken: the principal may create accounts, and the input is valid and within its scope.
   */
  initialPassword(principal: Principal, input: AccountInput): Promise<InitialPassword> {
    this.#mayCreate(principal, input);
    validateAccountInput(input);
    return this.#deps.accountService.initialPassword();
  }

  /** A new account, only within the operator's scope; with `initial`, the initial password made beforehand (AccountService.initialPassword). */
  async create(principal: Principal, input: AccountInput, initial?: InitialPassword) {
    this.#mayCreate(principal, input);
    // Refused input costs no hash.
    validateAccountInput(input);
    const password = initial ?? (await this.#deps.accountService.initialPassword());
    return this.#recorded(async () => {
      const created = await this.#deps.accountService.create(input, password);
      await this.#audit(principal, 'account.created', created.account.id);
      return created;
    });
  }

  #mayCreate(principal: Principal, input: AccountInput): void {
    authorize(principal, 'account.create');
    const department = typeof input.profile?.department === 'string' ? (normalizeDepartment(input.profile.department) ?? null) : null;
    // As the account will hold it ("Student " is a student), or the scope would refuse a valid row.
    const affiliation = CORE_FIELDS.affiliation(input.affiliation);
    if (typeof affiliation === 'string') this.#withinScope(principal, { department, affiliation });
  }

  /** A change may not move an account out of the operator's scope. */
  #withinScope(principal: Principal, account: { department: string | null; affiliation: Affiliation }) {
    if (!inScope(principal.scope, account)) throw new DomainError('out_of_scope', 'that account would be outside your scope (departments and affiliations you manage)');
  }

  async updateProfile(principal: Principal, commonId: string, fields: Record<string, unknown>) {
    const current = await this.account(principal, commonId, 'account.update');
    if (typeof fields.department === 'string' || fields.department === null) {
      this.#withinScope(principal, { department: typeof fields.department === 'string' ? (normalizeDepartment(fields.department) ?? null) : null, affiliation: current.affiliation });
    }
    return this.#recorded(async () => {
      const updated = await this.#deps.accountService.updateProfile(commonId, fields);
      await this.#audit(principal, 'account.updated', updated.account.id, { fields: updated.changed });
      return updated;
    });
  }

  /** The name, university-registered address, affiliation or external identifier; the affiliation may not leave the scope. */
  async updateCore(principal: Principal, commonId: string, changes: Partial<Record<CoreField, unknown>>) {
    const current = await this.account(principal, commonId, 'account.update');
    if (typeof changes.affiliation === 'string') this.#withinScope(principal, { department: current.department, affiliation: changes.affiliation.trim().toLowerCase() as Affiliation });
    return this.#recorded(async () => {
      const updated = await this.#deps.accountService.updateCore(commonId, changes);
      await this.#audit(principal, 'account.updated', updated.account.id, { fields: updated.changed });
      return updated;
    });
  }

  /** A page of the accounts in scope meeting `where` (a condition on the account row), and how many do in all (SCIM lists). */
  async page(principal: Principal, query: { where: Expression<SqlBool>; offset: number; limit: number }) {
    authorize(principal, 'account.read');
    await this.#lookup(principal);
    const page = await this.#deps.accounts.page({ ...query, within: scopeCondition(principal.scope) });
    await this.#listed(principal, page.rows);
    return page;
  }

  async setMfaRequired(principal: Principal, commonId: string, required: boolean): Promise<AccountRow> {
    await this.account(principal, commonId, 'account.update');
    return this.#recorded(async () => {
      const account = await this.#deps.accountService.setMfaRequired(commonId, required);
      await this.#audit(principal, 'mfa.requirement_changed', account.id, { required });
      return account;
    });
  }

  /** A new initial password, handed over at the counter once an identity document was checked. */
  async reissuePassword(principal: Principal, commonId: string, why: Justification & { by?: string }) {
    await this.account(principal, commonId, 'account.credentials');
    const initial = await this.#deps.accountService.initialPassword();
    return this.#recorded(async () => {
      const issued = await this.#deps.accountService.reissuePassword(commonId, initial);
      await this.#audit(principal, 'password.reissued', issued.account.id, said(why));
      return issued;
    });
  }

  async unlock(principal: Principal, commonId: string): Promise<AccountRow> {
    await this.account(principal, commonId, 'account.credentials');
    return this.#recorded(async () => {
      const account = await this.#deps.accountService.unlock(commonId);
      await this.#deps.mfa.clearLocks(account.id);
      await this.#audit(principal, 'account.unlocked', account.id);
      return account;
    });
  }

  async resetMfa(principal: Principal, commonId: string, why: Justification): Promise<{ account: AccountRow; removed: number }> {
    const account = await this.account(principal, commonId, 'account.credentials');
    return this.#recorded(async () => {
      const removed = await this.#deps.mfa.reset(account.id);
      await this.#audit(principal, 'mfa.reset', account.id, { removedFactors: removed, ...said(why) });
      return { account, removed };
    });
  }

  async setStatus(principal: Principal, commonId: string, status: 'suspended' | 'active', why: Justification): Promise<AccountRow> {
    await this.account(principal, commonId, 'account.status');
    return this.#recorded(async () => {
      const account = await this.#deps.accountService.setStatus(commonId, status);
      await this.#audit(principal, `account.${status === 'active' ? 'activated' : 'suspended'}`, account.id, said({ reason: why.reason }));
      return account;
    });
  }

  /** Revokes now, or schedules the revocation for `on` (the lifecycle job applies it then). */
  async revoke(principal: Principal, commonId: string, options: { on?: Date; reason: string | null }): Promise<AccountRow> {
    await this.account(principal, commonId, 'account.status');
    return this.#recorded(async () => {
      if (options.on) {
        const account = await this.#deps.revocations.schedule(commonId, options.on, options.reason);
        await this.#audit(principal, 'account.revocation_scheduled', account.id, { on: new Date(account.revoke_at!).toISOString(), reason: options.reason });
        return account;
      }
      const account = await this.#deps.accountService.setStatus(commonId, 'revoked', options.reason);
      await this.#audit(principal, 'account.revoked', account.id, { reason: account.revoke_reason });
      return account;
    });
  }

  async cancelRevocation(principal: Principal, commonId: string): Promise<AccountRow> {
    await this.account(principal, commonId, 'account.status');
    return this.#recorded(async () => {
      const account = await this.#deps.revocations.cancel(commonId);
      await this.#audit(principal, 'account.revocation_cancelled', account.id);
      return account;
    });
  }

  async unlinkIdentity(principal: Principal, commonId: string): Promise<AccountRow> {
    const account = await this.account(principal, commonId, 'account.unlink_idv');
    return this.#recorded(async () => {
      if (!(await this.#deps.idv.unlink(account.id, principal.actor))) throw new DomainError('link_not_found', `account ${account.common_id} has no identity link`);
      return account;
    });
  }

  async recordEducation(principal: Principal, commonId: string, year: unknown, passedOn: unknown) {
    const account = await this.account(principal, commonId, 'education.record');
    return this.#recorded(async () => {
      const result = await this.#deps.education.record(account.id, year, passedOn);
      await this.#audit(principal, 'education.recorded', account.id, result);
      return { account, ...result };
    });
  }

  async lendToken(principal: Principal, serial: string, commonId: string): Promise<AccountRow> {
    const account = await this.account(principal, commonId, 'token.lend');
    return this.#recorded(async () => {
      await this.#deps.tokens.assign(serial, account.id);
      await this.#audit(principal, 'token.lent', account.id, { serial });
      return account;
    });
  }

  /** Takes a token back: a scoped operator only from an account of the scope (else: no such token). */
  async collectToken(principal: Principal, serial: string): Promise<string | null> {
    authorize(principal, 'token.lend');
    if (principal.scope) {
      const holder = await this.#deps.tokens.lentTo(serial);
      const account = holder ? await this.#deps.accounts.findById(holder) : undefined;
      if (!account || !inScope(principal.scope, account)) throw new DomainError('token_not_found', `no token with serial ${serial} lent to an account you manage`);
    }
    return this.#recorded(async () => {
      const previous = await this.#deps.tokens.unassign(serial);
      await this.#audit(principal, 'token.returned', previous, { serial });
      return previous;
    });
  }

  async signins(principal: Principal, filter: { commonId?: string; since?: Date; limit: number }) {
    authorize(principal, 'signins.read');
    // Looking up one account's sign-ins is looking at the account: the same scope answer.
    const accountId = filter.commonId === undefined ? undefined : (await this.#scoped(principal, filter.commonId)).id;
    return this.#deps.signinLog.list({ accountId, since: filter.since, limit: filter.limit, within: principal.scope ? scopeCondition(principal.scope) : undefined });
  }

  async auditTrail(principal: Principal, filter: { commonId?: string; limit: number }) {
    authorize(principal, 'audit.read');
    const accountId = filter.commonId === undefined ? undefined : (await this.#scoped(principal, filter.commonId)).id;
    return this.#deps.audit.list({ accountId, limit: filter.limit, within: principal.scope ? scopeCondition(principal.scope) : undefined });
  }

  /** An account for a log filter: its permission was checked by the caller, only the scope is. */
  async #scoped(principal: Principal, commonId: string): Promise<AccountRow> {
    const account = await this.#deps.accountService.get(commonId);
    if (!inScope(principal.scope, account)) throw accountNotFound(commonId);
    return account;
  }

  // Operators: API tokens and the people with console roles (administrators only).

  async createApiToken(principal: Principal, spec: { name: string; role: Role; scope: Scope | null; expiresAt: Date | null }): Promise<string> {
    authorize(principal, 'operator.manage');
    return this.#recorded(async () => {
      const token = await this.#deps.operators.create({ ...spec, createdBy: principal.actor });
      await this.#audit(principal, 'operator.token_created', null, { name: spec.name, role: spec.role, scope: spec.scope, expiresAt: spec.expiresAt?.toISOString() ?? null });
      return token;
    });
  }

  listApiTokens(principal: Principal) {
    authorize(principal, 'operator.manage');
    return this.#deps.operators.listTokens();
  }

  async revokeApiToken(principal: Principal, id: number): Promise<void> {
    authorize(principal, 'operator.manage');
    await this.#recorded(async () => {
      if (!(await this.#deps.operators.revokeToken(id))) throw new DomainError('token_not_found', `no live API token with id ${id}`);
      await this.#audit(principal, 'operator.token_revoked', null, { id });
    });
  }

  async grantConsoleRole(principal: Principal, commonId: string, role: Role, scope: Scope | null): Promise<AccountRow> {
    authorize(principal, 'operator.manage');
    if (!(PERSON_ROLES as readonly Role[]).includes(role)) throw new DomainError('invalid_request', `a person's role is one of ${PERSON_ROLES.join(', ')}`);
    const account = await this.#deps.accountService.get(commonId);
    return this.#recorded(async () => {
      await this.#deps.operators.grant(account.id, role, scope, principal.actor);
      await this.#audit(principal, 'operator.role_granted', account.id, { role, scope: role === 'admin' ? null : scope });
      return account;
    });
  }

  async withdrawConsoleRole(principal: Principal, commonId: string): Promise<AccountRow> {
    authorize(principal, 'operator.manage');
    const account = await this.#deps.accountService.get(commonId);
    return this.#recorded(async () => {
      if (!(await this.#deps.operators.withdraw(account.id))) throw new DomainError('role_not_found', `${commonId} has no console role`);
      await this.#audit(principal, 'operator.role_withdrawn', account.id);
      return account;
    });
  }

  listConsoleRoles(principal: Principal) {
    authorize(principal, 'operator.manage');
    return this.#deps.operators.listPeople();
  }
}
