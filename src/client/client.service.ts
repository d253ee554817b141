import { randomBytes } from 'node:crypto';
import type { SecretBox } from '../crypto/secret-box.ts';
import { DomainError } from '../shared/errors.ts';
import { cleanName } from '../shared/text.ts';
import type { ClientRecord, ClientRow, ClientStore } from './client.store.ts';
import type { AccountStatus, Affiliation } from '../db/schema.ts';
import { AFFILIATIONS, STATUSES } from '../account/account.service.ts';

export interface ClientInput {
  name?: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  backchannelLogoutUri?: string | null;
  public?: boolean;
  firstParty?: boolean;
  pairwise?: boolean;
  maxPasswordLength?: number | null;
  requireMfa?: boolean;
  mfaMaxAge?: number | null;
  legacyPassword?: boolean;
  /** The client may get access tokens for itself (client_credentials grant), as a back-end service. */
  clientCredentials?: boolean;
  /** null: every affiliation. */
  allowedAffiliations?: Affiliation[] | null;
  allowedStatuses?: AccountStatus[];
  requireEducation?: boolean;
  /** Revoked accounts may sign in here through identity verification during the salvage period. */
  salvage?: boolean;
  listed?: boolean;
  description?: string | null;
  homepageUrl?: string | null;
  /** ISO dates or date-times: the MFA rollout at this client. */
  mfaWarningFrom?: string | null;
  mfaRequiredFrom?: string | null;
}

export interface ClientView {
  clientId: string;
  name: string;
  public: boolean;
  firstParty: boolean;
  pairwise: boolean;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  backchannelLogoutUri: string | null;
  maxPasswordLength: number | null;
  requireMfa: boolean;
  mfaMaxAge: number | null;
  legacyPassword: boolean;
  clientCredentials: boolean;
  allowedAffiliations: Affiliation[] | null;
  allowedStatuses: AccountStatus[];
  requireEducation: boolean;
  salvage: boolean;
  listed: boolean;
  description: string | null;
  homepageUrl: string | null;
  mfaWarningFrom: string | null;
  mfaRequiredFrom: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Lets the provider check metadata exactly as it will when the client is used. */
export type MetadataValidator = (metadata: Record<string, unknown>) => Promise<void>;

function uri(value: string, what: string, allowHttp: boolean): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DomainError('invalid_uri', `${what} is not an absolute URL: ${value}`);
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (allowHttp || loopback))) {
    throw new DomainError('invalid_uri', `${what} must use https: ${value}`);
  }
  if (url.hash) throw new DomainError('invalid_uri', `${what} must not have a fragment: ${value}`);
  if (url.username || url.password) throw new DomainError('invalid_uri', `${what} must not carry credentials: ${value}`);
  return value;
}

function toView(row: ClientRow): ClientView {
  // biome-ignore lint/suspicious/noExplicitAny: the provider's stored client metadata is open-ended JSON
  const m = row.metadata as Record<string, any>;
  return {
    clientId: row.client_id,
    name: row.name,
    public: m.token_endpoint_auth_method === 'none',
    firstParty: row.first_party,
    pairwise: m.subject_type === 'pairwise',
    redirectUris: m.redirect_uris ?? [],
    postLogoutRedirectUris: m.post_logout_redirect_uris ?? [],
    backchannelLogoutUri: m.backchannel_logout_uri ?? null,
    maxPasswordLength: row.max_password_length,
    requireMfa: row.require_mfa,
    mfaMaxAge: row.mfa_max_age,
    legacyPassword: row.legacy_password,
    clientCredentials: (m.grant_types ?? []).includes('client_credentials'),
    allowedAffiliations: row.allowed_affiliations,
    allowedStatuses: row.allowed_statuses,
    requireEducation: row.require_education,
    salvage: row.salvage,
    listed: row.listed,
    description: row.description,
    homepageUrl: row.homepage_url,
    mfaWarningFrom: row.mfa_warning_from ? new Date(row.mfa_warning_from).toISOString() : null,
    mfaRequiredFrom: row.mfa_required_from ? new Date(row.mfa_required_from).toISOString() : null,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

/** Relying parties: registered by operators, read by the provider through the adapter. */
export class ClientService {
  readonly #store: ClientStore;
  readonly #box: SecretBox;
  /** Decrypted secrets by ciphertext: the provider reads the client on every request it serves. */
  readonly #secrets = new Map<string, string>();
  readonly #validate: MetadataValidator;
  readonly #allowHttp: boolean;

  constructor(deps: { store: ClientStore; box: SecretBox; validate: MetadataValidator; allowHttpRedirects: boolean }) {
    this.#store = deps.store;
    this.#box = deps.box;
    this.#validate = deps.validate;
    this.#allowHttp = deps.allowHttpRedirects;
  }

  async create(input: ClientInput, clientId = `${slug(input.name ?? '')}-${randomBytes(6).toString('hex')}`): Promise<{ client: ClientView; clientSecret: string | null }> {
    if (!input.name) throw new DomainError('invalid_name', 'a client needs a name (--name)');
    if (!input.redirectUris?.length) throw new DomainError('invalid_uri', 'a client needs at least one redirect URI (--redirect-uri)');
    const clientSecret = input.public ? null : randomBytes(32).toString('base64url');
    const record = await this.#record(clientId, input, clientSecret);
    if (!(await this.#store.insert(record))) throw new DomainError('client_exists', `client ${clientId} already exists`);
    return { client: await this.show(clientId), clientSecret };
  }

  async update(clientId: string, changes: ClientInput & { rotateSecret?: boolean }): Promise<{ client: ClientView; clientSecret: string | null }> {
    const row = await this.#find(clientId);
    const { rotateSecret, ...given } = changes;
    // What the change leaves out (undefined) keeps its current value; null clears a nullable setting.
    const merged: ClientInput = { ...toView(row), ...Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined)) };
    let secret: string | null = null;
    if (!merged.public && (rotateSecret || !row.client_secret_enc)) secret = randomBytes(32).toString('base64url');
    const record = await this.#record(clientId, merged, secret ?? (merged.public ? null : this.#secret(row.client_secret_enc!)));
    await this.#store.update(record);
    return { client: await this.show(clientId), clientSecret: secret };
  }

  async show(clientId: string): Promise<ClientView> {
    return toView(await this.#find(clientId));
  }

  async list(): Promise<ClientView[]> {
    return (await this.#store.list()).map(toView);
  }

  async delete(clientId: string): Promise<void> {
    if (!(await this.#store.delete(clientId))) throw new DomainError('client_not_found', `no client ${clientId}`);
  }

  /** The registration as oidc-provider reads it, secret decrypted; undefined for unknown ids. */
  async providerMetadata(clientId: string): Promise<Record<string, unknown> | undefined> {
    if (clientId.length > 200) return undefined;
    const row = await this.#store.find(clientId);
    if (!row) return undefined;
    // A copy: the row is shared with the request's other readers (request-memo).
    const metadata = structuredClone(row.metadata) as Record<string, unknown>;
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
    if (!row) throw new DomainError('client_not_found', `no client ${clientId}`);
    return row;
  }

  async #record(clientId: string, input: ClientInput, clientSecret: string | null): Promise<ClientRecord> {
    const name = cleanName(String(input.name ?? ''), 200);
    if (!name) throw new DomainError('invalid_name', 'the client name must be 1 to 200 characters on one line, without control or bidirectional formatting characters');
    const max = input.maxPasswordLength ?? null;
    if (max !== null && (!Number.isInteger(max) || max < 8 || max > 1024)) {
      throw new DomainError('invalid_max_password_length', 'the maximum password length must be a whole number from 8 to 1024');
    }
    const mfaMaxAge = input.mfaMaxAge ?? null;
    if (mfaMaxAge !== null && (!Number.isInteger(mfaMaxAge) || mfaMaxAge < 60 || mfaMaxAge > 31_536_000)) {
      throw new DomainError('invalid_mfa_max_age', 'the MFA maximum age must be a whole number of seconds from 60 to 31536000');
    }
    if (input.clientCredentials && input.public) {
      throw new DomainError('invalid_client_metadata', 'a public client has no secret to authenticate a client-credentials grant');
    }
    const metadata: Record<string, unknown> = {
      client_id: clientId,
      client_name: name,
      redirect_uris: (input.redirectUris ?? []).map((u) => uri(u, 'redirect URI', this.#allowHttp)),
      post_logout_redirect_uris: (input.postLogoutRedirectUris ?? []).map((u) => uri(u, 'post-logout redirect URI', this.#allowHttp)),
      response_types: ['code'],
      // The password grant is a deliberate, per-client exception for back-ends such as mail or Wi-Fi servers.
      grant_types: ['authorization_code', 'refresh_token', ...(input.legacyPassword ? ['password'] : []), ...(input.clientCredentials ? ['client_credentials'] : [])],
      token_endpoint_auth_method: input.public ? 'none' : 'client_secret_basic',
      subject_type: input.pairwise ? 'pairwise' : 'public',
      first_party: Boolean(input.firstParty),
    };
    if (input.backchannelLogoutUri) {
      metadata.backchannel_logout_uri = uri(input.backchannelLogoutUri, 'back-channel logout URI', true);
      metadata.backchannel_logout_session_required = true;
    }
    try {
      await this.#validate({ ...metadata, ...(clientSecret ? { client_secret: clientSecret } : {}) });
    } catch (error) {
      const e = error as { error_description?: string; message?: string };
      throw new DomainError('invalid_client_metadata', e.error_description ?? e.message ?? 'invalid client metadata');
    }
    return {
      clientId,
      clientSecretEnc: clientSecret ? this.#box.encrypt(clientSecret) : null,
      name,
      metadata,
      firstParty: Boolean(input.firstParty),
      maxPasswordLength: max,
      requireMfa: Boolean(input.requireMfa),
      mfaMaxAge,
      legacyPassword: Boolean(input.legacyPassword),
      allowedAffiliations: oneOfEach('affiliation', input.allowedAffiliations ?? null, AFFILIATIONS),
      allowedStatuses: oneOfEach('status', input.allowedStatuses ?? ['active'], STATUSES)!,
      requireEducation: Boolean(input.requireEducation),
      salvage: Boolean(input.salvage),
      listed: Boolean(input.listed),
      description: description(input.description ?? null),
      homepageUrl: input.homepageUrl ? uri(input.homepageUrl, 'homepage URL', this.#allowHttp) : null,
      mfaWarningFrom: rolloutDate('MFA warning date', input.mfaWarningFrom ?? null),
      mfaRequiredFrom: rolloutDate('MFA required date', input.mfaRequiredFrom ?? null),
    };
  }
}

/** A bare date is midnight in Japan (the reference university's time zone). */
function rolloutDate(what: string, value: string | null): Date | null {
  if (value === null || value === '') return null;
  const date = /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(`${value}T00:00:00+09:00`) : new Date(value);
  if (Number.isNaN(date.getTime())) throw new DomainError('invalid_date', `the ${what} must be a date such as 2027-04-01`);
  return date;
}

function description(value: string | null): string | null {
  if (value === null) return null;
  if (String(value).trim() === '') return null;
  const text = cleanName(String(value), 500, { lineBreaks: true });
  if (!text) throw new DomainError('invalid_description', 'the description must be at most 500 characters, without control or bidirectional formatting characters (line breaks are allowed)');
  return text;
}

/** A list of distinct known values (an empty list is refused: it would close the client to all). */
function oneOfEach<T extends string>(what: 'affiliation' | 'status', values: readonly unknown[] | null, allowed: readonly T[]): T[] | null {
  if (values === null) return null;
  if (!Array.isArray(values) || values.length === 0 || values.some((v) => !allowed.includes(v as T))) {
    const message = `each ${what} must be one of ${allowed.join(', ')} (at least one)`;
    throw what === 'affiliation' ? new DomainError('invalid_affiliation', message) : new DomainError('invalid_status', message);
  }
  return [...new Set(values as T[])];
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
