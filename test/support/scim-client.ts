/**
 * A SCIM 2.0 client built from RFC 7644 alone: it speaks HTTP and JSON to a service provider and
 * knows nothing of Akamon (no imports from src/), so the tests see the provider as a student or
 * personnel system would. Request bodies follow the RFC's examples (RFC 7644 3.3, 3.5.1, 3.5.2).
 */
export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const AKAMON = 'urn:akamon:scim:schemas:extension:account:2.0:User';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const MEDIA_TYPE = 'application/scim+json';

export interface ScimAnswer {
  status: number;
  headers: Headers;
  /** The JSON answer; null when there is no body. */
  body: any;
  contentType: string;
}

export interface PatchOperation {
  op: string;
  path?: string;
  value?: unknown;
}

export class ScimClient {
  readonly base: string;
  readonly token: string | undefined;

  /** `base` is the service provider's root, such as https://idp.example.ac.jp/scim/v2. */
  constructor(base: string, token: string | undefined) {
    this.base = base.replace(/\/$/, '');
    this.token = token;
  }

  /** One request; a string body is sent as it is (for malformed input), anything else as JSON. */
  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ScimAnswer> {
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        accept: MEDIA_TYPE,
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...(body !== undefined ? { 'content-type': MEDIA_TYPE } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null, contentType: response.headers.get('content-type') ?? '' };
  }

  createUser(user: Record<string, unknown>) {
    return this.request('POST', '/Users', user);
  }

  getUser(id: string, headers: Record<string, string> = {}) {
    return this.request('GET', `/Users/${encodeURIComponent(id)}`, undefined, headers);
  }

  /** GET /Users with filter, startIndex and count (RFC 7644 3.4.2). */
  listUsers(query: { filter?: string; startIndex?: number | string; count?: number | string } = {}) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const search = params.toString();
    return this.request('GET', `/Users${search ? `?${search}` : ''}`);
  }

  replaceUser(id: string, user: Record<string, unknown>, version?: string) {
    return this.request('PUT', `/Users/${encodeURIComponent(id)}`, user, version ? { 'if-match': version } : {});
  }

  patchUser(id: string, operations: PatchOperation[], version?: string) {
    return this.request('PATCH', `/Users/${encodeURIComponent(id)}`, { schemas: [PATCH_OP], Operations: operations }, version ? { 'if-match': version } : {});
  }

  deleteUser(id: string, version?: string) {
    return this.request('DELETE', `/Users/${encodeURIComponent(id)}`, undefined, version ? { 'if-match': version } : {});
  }

  /** Every resource matching the filter, page by page, as a client syncing a directory reads them. */
  async allUsers(filter: string, count: number): Promise<any[]> {
    const users: any[] = [];
    for (let start = 1; ; start += count) {
      const page = await this.listUsers({ filter, startIndex: start, count });
      if (page.status !== 200) throw new Error(`list answered ${page.status}: ${JSON.stringify(page.body)}`);
      users.push(...page.body.Resources);
      if (page.body.Resources.length < count || users.length >= page.body.totalResults) return users;
    }
  }
}

/**
 * A User as a university's student system would send it: RFC 7643 8.2's shape with the
 * enterprise extension (department) and Akamon's (names in Japanese script and kana, affiliation).
 */
export function studentUser(userName: string, more: Record<string, unknown> = {}): Record<string, unknown> {
  // The student number without any realm, for the identifiers the system derives from it.
  const number = userName.split('@')[0];
  return {
    schemas: [USER_SCHEMA, ENTERPRISE, AKAMON],
    userName,
    externalId: `sis-${number}`,
    name: { formatted: 'Hanako Yamada', familyName: 'Yamada', givenName: 'Hanako' },
    displayName: 'Hanako Yamada',
    emails: [{ value: `${number}@mail.example.ac.jp`, type: 'work', primary: true }],
    active: true,
    [ENTERPRISE]: { department: 'eng/mech' },
    [AKAMON]: { familyNameJa: '山田', givenNameJa: '花子', familyNameKana: 'やまだ', givenNameKana: 'ハナコ', affiliation: 'student' },
    ...more,
  };
}
