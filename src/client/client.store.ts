import { sql, type Expression, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { ClientTable, DB } from '../db/schema.ts';
import { memoised, writing } from '../shared/request-memo.ts';
import { writingProviderRows } from '../db/provider-rows.ts';
import { prepared } from '../db/prepared.ts';
import { DomainError } from '../shared/errors.ts';

/**
 * A client as stored. `has_account_rules` (read with the row by `find`) says whether any allow or
 * deny entry names this client: most name none, and then no account needs a lookup of its own.
 */
export type ClientRow = Selectable<ClientTable> & { has_account_rules?: boolean };

/**
 * A client as the service writes it: its secret, its registration for the provider, and the other
 * columns, which the settings table (client-settings.ts) names.
 */
export interface ClientRecord {
  clientId: string;
  clientSecretEnc: string | null;
  metadata: Record<string, unknown>;
  columns: Record<string, unknown>;
}

function columns(c: ClientRecord) {
  return {
    // The names and values come from the settings table, which is typed against ClientTable.
    ...(c.columns as Omit<Insertable<ClientTable>, 'client_id' | 'client_secret_enc' | 'metadata' | 'created_at' | 'updated_at'>),
    client_secret_enc: c.clientSecretEnc,
    metadata: JSON.stringify(c.metadata),
    saml: c.columns.saml ? JSON.stringify(c.columns.saml) : null,
    updated_at: sql<Date>`now()` as never,
  };
}

/** The one unique value besides the id (client_resource_server_key): another API has this resource indicator. */
const resourceServerTaken =
  (c: ClientRecord) =>
  (error: { code?: string }): never => {
    if (error.code === '23505') throw new DomainError('resource_server_taken', `another client is already the API with resource indicator ${c.columns.resource_server}`);
    throw error;
  };

/** The request-memo key of a client's row (its account rules are part of it). */
export const clientMemoKey = (clientId: string) => `client:${clientId}`;

/**
 * Every column of the client table, named (the compiler checks the list against the table): the
 * reads below are prepared statements, and a column that another node's migration adds must not
 * change what they return (a prepared `client.*` would fail once on every connection of the older nodes).
 */
const CLIENT_COLUMNS = Object.keys({
  client_id: true,
  client_secret_enc: true,
  name: true,
  name_ja: true,
  metadata: true,
  first_party: true,
  max_password_length: true,
  require_mfa: true,
  mfa_max_age: true,
  legacy_password: true,
  allowed_affiliations: true,
  allowed_departments: true,
  allowed_statuses: true,
  require_education: true,
  listed: true,
  description: true,
  homepage_url: true,
  mfa_warning_from: true,
  mfa_required_from: true,
  salvage: true,
  resource_server: true,
  resources: true,
  protocol: true,
  saml: true,
  created_at: true,
  updated_at: true,
} satisfies Record<keyof ClientTable, true>).map((column) => `client.${column}` as `client.${keyof ClientTable}`);

/**
 * A client's row as `find` reads it (with whether any account rule names the client), for `find`
 * and for statements that read it along with other rows (a sign-in step's page: interaction-state.store.ts).
 */
export function clientRowQuery(db: Kysely<DB>, clientId: string | Expression<string>) {
  return db
    .selectFrom('client')
    .select(CLIENT_COLUMNS)
    .select((eb) =>
      eb
        .exists(eb.selectFrom('client_account_rule').select(sql`1`.as('one')).whereRef('client_account_rule.client_id', '=', 'client.client_id'))
        .$castTo<boolean>()
        .as('has_account_rules'),
    )
    .where('client_id', '=', clientId);
}

export class ClientStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  async insert(c: ClientRecord): Promise<boolean> {
    const row = await writing(clientMemoKey(c.clientId), () =>
      this.#db
        .insertInto('client')
        .values({ client_id: c.clientId, ...columns(c) })
        .onConflict((oc) => oc.column('client_id').doNothing())
        .returning('client_id')
        .executeTakeFirst()
        .catch(resourceServerTaken(c)),
    );
    return row !== undefined;
  }

  async update(c: ClientRecord): Promise<void> {
    await writing(clientMemoKey(c.clientId), () => this.#db.updateTable('client').set(columns(c)).where('client_id', '=', c.clientId).execute().catch(resourceServerTaken(c)));
  }

  /** Read once per request however many steps ask (see request-memo); by its key, on every authorization and token request: prepared. */
  find(clientId: string): Promise<ClientRow | undefined> {
    return memoised(clientMemoKey(clientId), async () => (await prepared(sql<ClientRow>`${clientRowQuery(this.#db, clientId)}`).execute(this.#db)).rows[0]);
  }

  /** The API (resource server) with this resource indicator. */
  /** The API registered under a resource indicator: its id and name (all a token request or a consent page needs). */
  findByResource(indicator: string): Promise<{ client_id: string; name: string } | undefined> {
    return this.#db.selectFrom('client').select(['client_id', 'name']).where('resource_server', '=', indicator).executeTakeFirst();
  }

  list(): Promise<ClientRow[]> {
    return this.#db.selectFrom('client').selectAll().orderBy('name').execute();
  }

  /** The clients of the public service directory, by name. */
  listed(): Promise<ClientRow[]> {
    return this.#db.selectFrom('client').selectAll().where('listed', '=', true).orderBy('name').execute();
  }

  async delete(clientId: string): Promise<boolean> {
    const result = await writing(clientMemoKey(clientId), () => this.#db.deleteFrom('client').where('client_id', '=', clientId).executeTakeFirst());
    if (result.numDeletedRows > 0n) {
      // Its grants and tokens are worthless now; the sweeper would take longer.
      await writingProviderRows(() => sql`delete from oidc_payload where payload->>'clientId' = ${clientId} or payload->>'client_id' = ${clientId}`.execute(this.#db));
    }
    return result.numDeletedRows > 0n;
  }

  /** The clients that accept only passwords up to a length, the shortest limit first. */
  passwordLimitingClients(): Promise<ClientRow[]> {
    return this.#db.selectFrom('client').selectAll().where('max_password_length', 'is not', null).orderBy('max_password_length').orderBy('name').execute();
  }
}
