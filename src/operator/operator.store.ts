import fs from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Affiliation, ConsoleRoleTable, DB, OperatorTable } from '../db/schema.ts';
import { randomToken, sha256 } from '../crypto/tokens.ts';
import type { Principal, Role, Scope } from './permissions.ts';

export const OPERATOR_TOKEN_FILE = 'operator-token';

export type ApiTokenRow = Omit<Selectable<OperatorTable>, 'token_hash'>;
export type ConsoleRoleRow = Selectable<ConsoleRoleTable> & { common_id: string; name: string };

export interface NewApiToken {
  name: string;
  role: Role;
  scope: Scope | null;
  expiresAt: Date | null;
  /** The actor who made it (`operator:...`, `console:...`), or null for the server itself. */
  createdBy: string | null;
}

const scopeOf = (row: { role: string; departments: string[]; affiliations: string[] }): Scope | null =>
  row.role === 'admin' || (!row.departments.length && !row.affiliations.length) ? null : { departments: row.departments, affiliations: row.affiliations as Affiliation[] };

const scopeColumns = (scope: Scope | null) => ({ departments: [...(scope?.departments ?? [])], affiliations: [...(scope?.affiliations ?? [])] });

/**
 * Operators: API tokens (for the CLI and automation) and the people who may use the console, each
 * with a role and a scope (src/operator/permissions.ts). Tokens are random bearer secrets kept as
 * SHA-256 hashes (they carry 256 bits, so a slow hash adds nothing) and shown once. The first start
 * writes an administrator's token to the data directory.
 */
export class OperatorStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /** A new API token; the secret is returned here and never again. */
  async create(spec: NewApiToken | string): Promise<string> {
    const { name, role, scope, expiresAt, createdBy } = typeof spec === 'string' ? { name: spec, role: 'admin' as const, scope: null, expiresAt: null, createdBy: null } : spec;
    const token = randomToken('akop_');
    await this.#db
      .insertInto('operator')
      .values({ name, token_hash: sha256(token), role, ...scopeColumns(scope), expires_at: expiresAt, created_by: createdBy })
      .execute();
    return token;
  }

  /**
   * The principal a bearer token stands for, or undefined for an unknown, revoked or expired one.
   * Looked up by its hash: no comparison of secrets happens in JavaScript.
   */
  async verify(token: string): Promise<Principal | undefined> {
    if (!/^akop_[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    const row = await this.#db
      .updateTable('operator')
      .set({ last_used_at: sql<Date>`now()` as never })
      .where('token_hash', '=', sha256(token))
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
      .returning(['name', 'role', 'departments', 'affiliations'])
      .executeTakeFirst();
    return row && { actor: `operator:${row.name}`, role: row.role as Role, scope: scopeOf(row) };
  }

  listTokens(): Promise<ApiTokenRow[]> {
    return this.#db
      .selectFrom('operator')
      .select(['id', 'name', 'role', 'departments', 'affiliations', 'created_at', 'created_by', 'expires_at', 'last_used_at', 'revoked_at'])
      .orderBy('id')
      .execute();
  }

  /** Revokes a token by its id; false when there is no such live token. */
  async revokeToken(id: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('operator')
      .set({ revoked_at: sql<Date>`now()` as never })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Gives a person a console role (replacing the one they had). */
  async grant(accountId: string, role: Role, scope: Scope | null, grantedBy: string): Promise<void> {
    const values = { role, ...scopeColumns(role === 'admin' ? null : scope), granted_by: grantedBy };
    await this.#db
      .insertInto('console_role')
      .values({ account_id: accountId, ...values })
      .onConflict((oc) => oc.column('account_id').doUpdateSet({ ...values, granted_at: sql<Date>`now()` as never }))
      .execute();
  }

  async withdraw(accountId: string): Promise<boolean> {
    const result = await this.#db.deleteFrom('console_role').where('account_id', '=', accountId).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  listPeople(): Promise<ConsoleRoleRow[]> {
    return this.#db
      .selectFrom('console_role')
      .innerJoin('account', 'account.id', 'console_role.account_id')
      .selectAll('console_role')
      .select(['account.common_id', 'account.name'])
      .orderBy('account.common_id')
      .execute();
  }

  /** The console principal of a person, or undefined when they have no console role. */
  async personPrincipal(accountId: string, commonId: string): Promise<Principal | undefined> {
    const row = await this.#db.selectFrom('console_role').select(['role', 'departments', 'affiliations']).where('account_id', '=', accountId).executeTakeFirst();
    return row && { actor: `console:${commonId}`, role: row.role as Role, scope: scopeOf(row) };
  }

  /**
   * A principal as it stands now, for work that outlives the request that started it (an import):
   * a person's role and scope are read again, and a person whose role was withdrawn or whose account
   * is no longer active has none. A token's principal is as it was (imports are started in the console).
   */
  async currentPrincipal(principal: Principal): Promise<Principal | undefined> {
    if (!principal.actor.startsWith('console:')) return principal;
    const row = await this.#db
      .selectFrom('console_role')
      .innerJoin('account', 'account.id', 'console_role.account_id')
      .select(['console_role.role', 'console_role.departments', 'console_role.affiliations'])
      .where('account.common_id', '=', principal.actor.slice('console:'.length))
      .where('account.status', '=', 'active')
      .executeTakeFirst();
    return row && { actor: principal.actor, role: row.role as Role, scope: scopeOf(row) };
  }

  /** On an empty database: creates the first administrator's token and writes it (mode 0600). */
  async ensureInitial(dataDir: string): Promise<string | undefined> {
    const existing = await this.#db.selectFrom('operator').select('id').limit(1).executeTakeFirst();
    if (existing) return undefined;
    const token = await this.create('initial');
    await fs.mkdir(dataDir, { recursive: true });
    const file = path.join(dataDir, OPERATOR_TOKEN_FILE);
    await fs.writeFile(file, `${token}\n`, { mode: 0o600 });
    return file;
  }
}
