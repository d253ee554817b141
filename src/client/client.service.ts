import { randomBytes } from 'node:crypto';
import type { SecretBox } from '../crypto/secret-box.ts';
import { DomainError } from '../shared/errors.ts';
import { excerpt } from '../shared/text.ts';
import {
  checkValues,
  defaultValues,
  mergeValues,
  secretBytes,
  settingEntries,
  storedForm,
  storedValues,
  type ClientInput,
  type ClientValues,
  type ClientView,
  type Protocol,
} from './client-settings.ts';
import type { ClientRecord, ClientRow, ClientStore } from './client.store.ts';

export type { ClientInput, ClientView } from './client-settings.ts';

/** Lets the provider check metadata exactly as it will when the client is used. */
export type MetadataValidator = (metadata: Record<string, unknown>) => Promise<void>;

/** A client as the admin API shows it: the settings of its protocol only (an SP has no redirect URIs). */
function toView(row: ClientRow): ClientView {
  const values = storedValues(row) as unknown as Record<string, unknown>;
  return {
    clientId: row.client_id,
    protocol: row.protocol,
    ...(Object.fromEntries(settingEntries(row.protocol).map(([key]) => [key, values[key]])) as unknown as ClientValues),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

const newSecret = (bytes: number) => randomBytes(bytes).toString('base64url');

/** A secret of `bytes` random bytes is this long in base64url: a shorter one was made for a weaker need. */
const secretLength = (bytes: number) => Math.ceil((bytes * 4) / 3);

/** Relying parties: registered by operators, read by the provider through the adapter. */
export class ClientService {
  readonly #store: ClientStore;
  readonly #box: SecretBox;
  /** Decrypted secrets by ciphertext: the provider reads the client on every request it serves. */
  readonly #secrets = new Map<string, string>();
  readonly #validate: MetadataValidator;
  readonly #allowHttp: boolean;
  readonly #timeZone: string;
  readonly #samlBridge: Record<string, unknown>;

  /** `samlContinueUri`: where the sign-in of a SAML service provider comes back to (src/saml/sso.ts). */
  constructor(deps: { store: ClientStore; box: SecretBox; validate: MetadataValidator; allowHttpRedirects: boolean; samlContinueUri: string; timeZone: string }) {
    this.#store = deps.store;
    this.#box = deps.box;
    this.#validate = deps.validate;
    this.#allowHttp = deps.allowHttpRedirects;
    this.#timeZone = deps.timeZone;
    // A SAML service provider signs people in through the provider as this registration: codes go
    // only to Akamon's own SAML endpoint, which redeems them in-process (no secret, PKCE). No OIDC
    // consent page: what a SAML SP is told is the attribute release its operator registered.
    this.#samlBridge = {
      redirect_uris: [deps.samlContinueUri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'none',
      first_party: true,
    };
  }

  /** A SAML service provider's client ID is its entityID, from its metadata. */
  async create(input: ClientInput & { protocol?: Protocol }, givenId?: string): Promise<{ client: ClientView; clientSecret: string | null }> {
    const { protocol = 'oidc', ...given } = input;
    if (!given.name) throw new DomainError('invalid_name', 'a client needs a name (--name)');
    const values = checkValues(mergeValues(defaultValues(), given), { allowHttp: this.#allowHttp, timeZone: this.#timeZone }, protocol);
    const clientId = protocol === 'saml' ? values.spMetadata!.entityId : (givenId ?? `${slug(given.name)}-${randomBytes(6).toString('hex')}`);
    const bytes = protocol === 'saml' ? null : secretBytes(values.tokenEndpointAuthMethod);
    const clientSecret = bytes === null ? null : newSecret(bytes);
    const record = await this.#record(clientId, values, clientSecret, protocol);
    if (!(await this.#store.insert(record))) throw new DomainError('client_exists', `client ${clientId} already exists`);
    return { client: await this.show(clientId), clientSecret };
  }

  /**
   * What the change leaves out (undefined) keeps its current value; null clears a nullable setting.
   * A new secret is made when asked for, when the client had none, or when its method needs a
   * longer one than it has (a switch to client_secret_jwt); it is answered once, as on create.
   */
  async update(clientId: string, changes: ClientInput & { rotateSecret?: boolean }): Promise<{ client: ClientView; clientSecret: string | null }> {
    const row = await this.#find(clientId);
    const { rotateSecret, ...given } = changes;
    const values = mergeValues(storedValues(row), given);
    const bytes = row.protocol === 'saml' ? null : secretBytes(values.tokenEndpointAuthMethod);
    const current = row.client_secret_enc ? this.#secret(row.client_secret_enc) : null;
    const made = bytes !== null && (rotateSecret || current === null || current.length < secretLength(bytes)) ? newSecret(bytes) : null;
    const record = await this.#record(clientId, values, bytes === null ? null : (made ?? current), row.protocol, row.protocol === 'saml' ? clientId : undefined);
    await this.#store.update(record);
    return { client: await this.show(clientId), clientSecret: made };
  }

  async show(clientId: string): Promise<ClientView> {
    return toView(await this.#find(clientId));
  }

  async list(): Promise<ClientView[]> {
    return (await this.#store.list()).map(toView);
  }

  async delete(clientId: string): Promise<void> {
    if (!(await this.#store.delete(clientId))) throw new DomainError('client_not_found', `no client ${excerpt(clientId)}`);
  }

  /** The registration as oidc-provider reads it, secret decrypted; undefined for unknown ids. */
  async providerMetadata(clientId: string): Promise<Record<string, unknown> | undefined> {
    if (clientId.length > 200) return undefined;
    const row = await this.#store.find(clientId);
    if (!row) return undefined;
    // A copy: the row is shared with the request's other readers (request-memo). Copied through
    // JSON, which it is: the provider takes a client's keys only as plain objects of its own realm
    // (constructor === Object), which structuredClone does not give under a test runner's VM context.
    const metadata = JSON.parse(JSON.stringify(row.protocol === 'saml' ? { ...row.metadata, ...this.#samlBridge } : row.metadata)) as Record<string, unknown>;
    if (row.client_secret_enc) metadata.client_secret = this.#secret(row.client_secret_enc);
    return metadata;
  }

  #secret(ciphertext: string): string {
    let secret = this.#secrets.get(ciphertext);
    if (secret === undefined) {
      // A rotated secret gets a new ciphertext; the bound keeps stale entries from piling up.
      if (this.#secrets.size >= 10_000) this.#secrets.clear();
      secret = this.#box.decrypt(ciphertext);
      this.#secrets.set(ciphertext, secret);
    }
    return secret;
  }

  async #find(clientId: string): Promise<ClientRow> {
    const row = clientId.length <= 200 ? await this.#store.find(clientId) : undefined;
    if (!row) throw new DomainError('client_not_found', `no client ${excerpt(clientId)}`);
    return row;
  }

  /** Checks every setting and the registration as the provider will read it, then the row to write. */
  async #record(clientId: string, values: ClientValues, clientSecret: string | null, protocol: Protocol, entityId?: string): Promise<ClientRecord> {
    const { columns, metadata } = storedForm(clientId, checkValues(values, { allowHttp: this.#allowHttp, timeZone: this.#timeZone, entityId }, protocol), protocol);
    try {
      const registration = protocol === 'saml' ? { ...metadata, ...this.#samlBridge } : metadata;
      await this.#validate({ ...registration, ...(clientSecret ? { client_secret: clientSecret } : {}) });
    } catch (error) {
      const e = error as { error_description?: string; message?: string };
      throw new DomainError('invalid_client_metadata', e.error_description ?? e.message ?? 'invalid client metadata');
    }
    return { clientId, clientSecretEnc: clientSecret ? this.#box.encrypt(clientSecret) : null, metadata, columns };
  }
}

function slug(name: string): string {
  return (
    name
      .normalize('NFKD')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 24) || 'client'
  );
}
