import type { ColumnType, Generated, JSONColumnType } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;

export interface OidcPayloadTable {
  model: string;
  id: string;
  payload: JSONColumnType<Record<string, unknown>>;
  grant_id: string | null;
  user_code: string | null;
  uid: string | null;
  account_id: string | null;
  expires_at: Timestamp | null;
  consumed_at: Timestamp | null;
  /** The code or refresh token this access or refresh token was issued in exchange for. */
  replaces: string | null;
  /** When the one retry of this consumed code or refresh token was granted. */
  retried_at: Timestamp | null;
}

export interface SigningKeyTable {
  kid: string;
  alg: string;
  public_jwk: JSONColumnType<Record<string, unknown>>;
  private_jwk_enc: string;
  created_at: CreatedAt;
  /** Published in JWKS from creation; used for signing only from this time, so every node has it first. */
  activates_at: Timestamp;
  retired_at: Timestamp | null;
}

export interface CookieKeyTable {
  id: Generated<number>;
  key_enc: string;
  created_at: CreatedAt;
}

export type Affiliation = 'student' | 'faculty' | 'staff' | 'alumni' | 'guest';
export type AccountStatus = 'active' | 'suspended' | 'revoked';

export interface AccountTable {
  id: Generated<string>;
  common_id: string;
  /** The name as the operator gave it: shown on pages and letters, the `name` claim by default. */
  name: string;
  email: string | null;
  /** The university vouches for `email` (migration 0010); see src/oidc/claims.ts. */
  email_verified: Generated<boolean>;
  /** The name in parts (src/account/account-fields.ts): Latin script, Japanese script, katakana reading. */
  family_name: string | null;
  given_name: string | null;
  family_name_ja: string | null;
  given_name_ja: string | null;
  family_name_kana: string | null;
  given_name_kana: string | null;
  /** The organisational unit, a code with levels separated by "/" (src/account/department.ts). */
  department: string | null;
  /** The feeding system's identifier of the person (SCIM externalId, migration 0016). */
  external_id: string | null;
  /** eduPerson entitlement URIs set by operators. */
  entitlements: ColumnType<string[], string[] | undefined, string[]>;
  affiliation: Affiliation;
  status: AccountStatus;
  password_hash: string;
  password_set_at: Timestamp;
  must_change_password: boolean;
  /** The person applied for MFA, or an operator requires it. */
  mfa_required: Generated<boolean>;
  recovery_email: string | null;
  recovery_email_verified_at: Timestamp | null;
  mfa_postpone_count: Generated<number>;
  mfa_postponed_at: Timestamp | null;
  /** A scheduled revocation: the account is revoked at this time by the lifecycle job. */
  revoke_at: Timestamp | null;
  revoke_reason: string | null;
  /** When the account was revoked; the data-salvage period counts from here. */
  revoked_at: Timestamp | null;
  /**
   * When every session of the account was last ended: a session signed in, or a grant made, before
   * it is dead even if a request in flight wrote it back after the delete (provider-rows.ts).
   */
  sessions_ended_at: Timestamp | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

/** An AuthnRequest on its way through the sign-in steps (src/saml/saml-request.store.ts). */
export interface SamlRequestTable {
  id: string;
  client_id: string;
  /** The request's ID; null for an IdP-initiated sign-in. */
  request_id: string | null;
  /** The browser that sent it: the answer goes back only to that one. */
  browser_hash: string;
  details: JSONColumnType<Record<string, unknown>>;
  created_at: CreatedAt;
  expires_at: Timestamp;
  answered_at: Timestamp | null;
}

/** An assertion given to a SAML service provider, tied to the sign-in session (for logout). */
export interface SamlSessionTable {
  id: string;
  client_id: string;
  account_id: string;
  session_uid: string;
  name_id: JSONColumnType<Record<string, unknown>>;
  created_at: CreatedAt;
  expires_at: Timestamp;
  ended_at: Timestamp | null;
}

export interface IdentityLinkTable {
  account_id: string;
  /** The upstream identity provider's issuer. */
  issuer: string;
  /** Its pairwise pseudonymous identifier of the person (sub). */
  subject: string;
  /** The name as the upstream provider gave it at linking. */
  name: string;
  linked_at: Timestamp;
}

export type FactorKind = 'totp' | 'token' | 'webauthn' | 'phone';

export interface MfaFactorTable {
  id: Generated<string>;
  account_id: string;
  kind: FactorKind;
  label: string;
  secret_enc: string | null;
  digits: Generated<number>;
  period: Generated<number>;
  /** For a lent hardware token: its serial number. */
  token_serial: string | null;
  credential_id: string | null;
  public_key: string | null;
  sign_count: ColumnType<string, string | number | undefined, string | number>;
  transports: string | null;
  is_default: Generated<boolean>;
  created_at: CreatedAt;
  last_used_at: Timestamp | null;
}

export interface HardwareTokenTable {
  serial: string;
  secret_enc: string;
  digits: number;
  period: number;
  assigned_to: string | null;
  assigned_at: Timestamp | null;
  created_at: CreatedAt;
}

export interface AppPasswordTable {
  id: Generated<string>;
  account_id: string;
  name: string;
  digest: string;
  created_at: CreatedAt;
  last_used_at: Timestamp | null;
}

export interface OtpCodeTable {
  id: Generated<string>;
  account_id: string;
  /** What the code proves, bound to where it went: "phone:<factor id>" or "enroll-phone:<interaction uid>". */
  purpose: string;
  code_digest: string;
  attempts: Generated<number>;
  expires_at: Timestamp;
  consumed_at: Timestamp | null;
  created_at: CreatedAt;
}

export interface TotpStepTable {
  account_id: string;
  step: ColumnType<string, string | number, never>;
  used_at: CreatedAt;
}

export interface ClientTable {
  client_id: string;
  client_secret_enc: string | null;
  name: string;
  /** The name on Japanese pages; null: `name` in both languages (migration 0012). */
  name_ja: string | null;
  metadata: JSONColumnType<Record<string, unknown>>;
  first_party: boolean;
  max_password_length: number | null;
  require_mfa: Generated<boolean>;
  /** Seconds after which a second factor must be shown again at this client. */
  mfa_max_age: number | null;
  /** Accepts the OAuth password grant (with app passwords for MFA accounts). */
  legacy_password: Generated<boolean>;
  /** null: every affiliation. */
  allowed_affiliations: ColumnType<Affiliation[] | null, Affiliation[] | null | undefined, Affiliation[] | null>;
  /** null: every department; else the accounts in one of these departments or below (src/account/department.ts). */
  allowed_departments: ColumnType<string[] | null, string[] | null | undefined, string[] | null>;
  allowed_statuses: ColumnType<AccountStatus[], AccountStatus[] | undefined, AccountStatus[]>;
  require_education: Generated<boolean>;
  listed: Generated<boolean>;
  description: string | null;
  homepage_url: string | null;
  mfa_warning_from: Timestamp | null;
  mfa_required_from: Timestamp | null;
  /** Revoked accounts may reach it through identity verification during the salvage period. */
  salvage: Generated<boolean>;
  /** An API's resource indicator (RFC 8707, migration 0009): tokens for it may be introspected by it. */
  resource_server: string | null;
  /** The resource indicators of the APIs this client may get tokens for (migration 0009). */
  resources: ColumnType<string[], string[] | undefined, string[]>;
  /** The protocol the system speaks (migration 0011); a SAML service provider's client_id is its entityID. */
  protocol: ColumnType<'oidc' | 'saml', 'oidc' | 'saml' | undefined, 'oidc' | 'saml'>;
  /** A SAML service provider's registration (src/saml/sp-registration.ts); null for OIDC clients. */
  saml: JSONColumnType<Record<string, unknown>> | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface ClientAccountRuleTable {
  client_id: string;
  common_id: string;
  effect: 'allow' | 'deny';
  created_at: CreatedAt;
}

export interface SecurityEducationTable {
  account_id: string;
  academic_year: number;
  /** A calendar date (YYYY-MM-DD), kept as text so no time zone can shift it. */
  passed_on: ColumnType<string, string, string>;
  recorded_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface OperatorTable {
  id: Generated<number>;
  name: string;
  token_hash: string;
  created_at: CreatedAt;
  last_used_at: Timestamp | null;
  /** src/operator/permissions.ts ROLES. */
  role: ColumnType<string, string | undefined, string>;
  departments: ColumnType<string[], string[] | undefined, string[]>;
  affiliations: ColumnType<string[], string[] | undefined, string[]>;
  expires_at: Timestamp | null;
  created_by: string | null;
  revoked_at: Timestamp | null;
}

/** People who may use the web console, with their role and scope. */
export interface ConsoleRoleTable {
  account_id: string;
  role: string;
  departments: ColumnType<string[], string[] | undefined, string[]>;
  affiliations: ColumnType<string[], string[] | undefined, string[]>;
  granted_by: string;
  granted_at: Generated<Date>;
}

export interface SigninEventTable {
  id: Generated<string>;
  occurred_at: CreatedAt;
  account_id: string | null;
  client_id: string | null;
  ip: string | null;
  user_agent: string | null;
  result: 'success' | 'failure';
  reason: string;
}

export interface AuditEventTable {
  id: Generated<string>;
  occurred_at: CreatedAt;
  /** "operator:<name>", "self" (the person) or "system". */
  actor: string;
  /** noun.past_verb, e.g. mfa.enrolled, password.reissued */
  action: string;
  account_id: string | null;
  details: JSONColumnType<Record<string, unknown>>;
}

export interface ThrottleTable {
  key: string;
  failures: Generated<number>;
  last_failure_at: Timestamp | null;
  locked_until: Timestamp | null;
  /** Attempts being checked right now (their secret is being hashed). */
  pending: Generated<number>;
  pending_since: Timestamp | null;
}

export interface InteractionStateTable {
  uid: string;
  data: JSONColumnType<Record<string, unknown>>;
  expires_at: Timestamp;
}

/** One row at most (migration 0006): the issuer this database serves. */
export interface InstallationTable {
  singleton: Generated<boolean>;
  issuer: string;
  issuer_since: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** A CSV import started in the console (migrations/0015). */
export interface ImportJobTable {
  id: Generated<string>;
  /** 'accounts' or 'revocations'. */
  kind: string;
  actor: string;
  file_name: string;
  total: number;
  processed: Generated<number>;
  failed: Generated<number>;
  created_at: CreatedAt;
  heartbeat_at: Generated<Date>;
  finished_at: Timestamp | null;
  secrets_gone_at: Timestamp | null;
}

/** One row of an import: outcome, every problem, and the encrypted initial password until handed out. */
export interface ImportJobRowTable {
  job_id: string;
  line: number;
  common_id: string | null;
  name: string | null;
  /** 'created', 'scheduled' or 'failed'. */
  outcome: string;
  errors: JSONColumnType<Array<{ code: string; message: string }>>;
  secret: string | null;
  done_at: Generated<Date>;
}

/** One mail to one address of an account about one occasion (migration 0017, src/notice/). */
export interface NoticeTable {
  id: Generated<string>;
  account_id: string;
  kind: string;
  occasion: string;
  /** 'university' or 'recovery'; 'none' records that the account had no address to write to. */
  recipient: string;
  details: JSONColumnType<Record<string, string>>;
  /** 'pending', 'sent', 'failed' or 'dropped'. */
  status: Generated<string>;
  attempts: Generated<number>;
  next_attempt_at: Timestamp;
  last_error: string | null;
  /** The address it went to, masked. */
  sent_to: string | null;
  sent_at: Timestamp | null;
  created_at: CreatedAt;
}

/** One day's MFA adoption for one dimension value (migration 0014, src/dashboard/). */
export interface MfaSnapshotTable {
  /** YYYY-MM-DD in the university's time zone. */
  day: string;
  dimension: 'all' | 'affiliation' | 'department';
  /** The affiliation or top-level department; '' for "all" and for accounts without a department. */
  value: string;
  active_accounts: number;
  mfa_accounts: number;
  taken_at: CreatedAt;
}

export interface DB {
  oidc_payload: OidcPayloadTable;
  signing_key: SigningKeyTable;
  cookie_key: CookieKeyTable;
  account: AccountTable;
  client: ClientTable;
  saml_request: SamlRequestTable;
  saml_session: SamlSessionTable;
  operator: OperatorTable;
  console_role: ConsoleRoleTable;
  signin_event: SigninEventTable;
  throttle: ThrottleTable;
  interaction_state: InteractionStateTable;
  mfa_factor: MfaFactorTable;
  totp_step: TotpStepTable;
  hardware_token: HardwareTokenTable;
  app_password: AppPasswordTable;
  audit_event: AuditEventTable;
  otp_code: OtpCodeTable;
  client_account_rule: ClientAccountRuleTable;
  security_education: SecurityEducationTable;
  identity_link: IdentityLinkTable;
  installation: InstallationTable;
  mfa_snapshot: MfaSnapshotTable;
  import_job: ImportJobTable;
  import_job_row: ImportJobRowTable;
  notice: NoticeTable;
}
