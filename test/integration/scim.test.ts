import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inUnitOfWork } from '../../src/db/driver.ts';
import { Browser } from '../support/browser.ts';
import { refuseWrites } from '../support/faults.ts';
import { redeem, signIn } from '../support/flows.ts';
import { adminApi, newCommonId, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { AKAMON, ENTERPRISE, ERROR, LIST_RESPONSE, MEDIA_TYPE, ScimClient, studentUser, USER_SCHEMA, type ScimAnswer } from '../support/scim-client.ts';

// Two nodes on one database, as behind a load balancer; the second revokes on DELETE only after 30 days.
const REALM = 'utac.u-tokyo.ac.jp';
let a: RunningAkamon;
let b: RunningAkamon;
/** A provisioning token for the whole university, one scoped to eng, and one of the monitoring role. */
let sis: ScimClient;
let eng: ScimClient;
let monitoring: ScimClient;
let onB: ScimClient;

async function token(name: string, role: string, departments: string[] = []): Promise<string> {
  // A writing role with no departments covers the whole university only when that is said.
  const created = await adminApi(a, 'POST', '/operators/tokens', { name, role, departments, ...(departments.length || role !== 'provisioning' ? {} : { wholeUniversity: true }) });
  expect(created.status).toBe(201);
  return created.body.token as string;
}

beforeAll(async () => {
  // Back-channel logout to loopback relying parties (the suspension test's).
  a = await startAkamon({ env: { AKAMON_REALM_SUFFIX: REALM, AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'true' } });
  b = await startAkamon({ share: a, env: { AKAMON_ISSUER: a.url, AKAMON_REALM_SUFFIX: REALM, AKAMON_SCIM_DELETE_GRACE_DAYS: '30' } });
  const whole = await token('student-system', 'provisioning');
  sis = new ScimClient(`${a.url}/scim/v2`, whole);
  onB = new ScimClient(`${b.url}/scim/v2`, whole);
  eng = new ScimClient(`${a.url}/scim/v2`, await token('eng-personnel', 'provisioning', ['eng']));
  monitoring = new ScimClient(`${a.url}/scim/v2`, await token('prometheus', 'monitoring'));
});
afterAll(async () => {
  await b?.close();
  await a?.close();
});

/** A SCIM error answer: the status (also as the string the RFC asks for), its scimType, the media type. */
function expectError(answer: ScimAnswer, status: number, scimType?: string): void {
  expect({ status: answer.status, body: answer.body }).toMatchObject({ status, body: { schemas: [ERROR], status: String(status) } });
  expect(answer.body.scimType).toBe(scimType);
  expect(typeof answer.body.detail).toBe('string');
  expect(answer.contentType).toContain(MEDIA_TYPE);
}

async function created(client: ScimClient, user: Record<string, unknown>) {
  const answer = await client.createUser(user);
  expect(answer.status).toBe(201);
  return answer.body;
}

const account = async (commonId: string) => (await adminApi(a, 'GET', `/accounts/${commonId}`)).body;
/** The account's sign-in sessions at the provider. */
const sessionsOf = async (accountId: string) => (await a.deps.database.db.selectFrom('oidc_payload').select('id').where('model', '=', 'Session').where('account_id', '=', accountId).execute()).length;
const audit = async (commonId: string) => (await adminApi(a, 'GET', `/audit?account=${commonId}`)).body.events as Array<{ actor: string; action: string }>;

describe('discovery', () => {
  test('ServiceProviderConfig, Schemas and ResourceTypes describe what is supported', async () => {
    const config = await sis.request('GET', '/ServiceProviderConfig');
    expect(config.status).toBe(200);
    expect(config.contentType).toContain(MEDIA_TYPE);
    expect(config.body).toMatchObject({ patch: { supported: true }, bulk: { supported: false }, filter: { supported: true, maxResults: 1000 }, etag: { supported: true }, sort: { supported: false } });
    const schemas = await sis.request('GET', '/Schemas');
    expect(schemas.body.schemas).toEqual([LIST_RESPONSE]);
    expect(schemas.body.Resources.map((s: { id: string }) => s.id).sort()).toEqual([AKAMON, USER_SCHEMA, ENTERPRISE].sort());
    const ours = await sis.request('GET', `/Schemas/${AKAMON}`);
    expect(ours.body.attributes.map((x: { name: string }) => x.name)).toEqual(expect.arrayContaining(['familyNameJa', 'givenNameKana', 'affiliation', 'affiliationEnd']));
    const userName = (await sis.request('GET', `/Schemas/${USER_SCHEMA}`)).body.attributes.find((x: { name: string }) => x.name === 'userName');
    expect(userName).toMatchObject({ required: true, uniqueness: 'server', mutability: 'immutable' });
    const types = await sis.request('GET', '/ResourceTypes');
    expect(types.body.Resources).toEqual([expect.objectContaining({ id: 'User', endpoint: '/Users', schema: USER_SCHEMA })]);
    expect((await sis.request('GET', '/ResourceTypes/User')).body.schemaExtensions).toHaveLength(2);
    expectError(await sis.request('GET', '/ResourceTypes/Group'), 404);
    expectError(await sis.request('GET', '/Groups'), 404);
    expectError(await sis.request('GET', `/Schemas/urn:nope`), 404);
  });

  test('another protocol version is invalidVers', async () => {
    expectError(await new ScimClient(`${a.url}/scim/v1`, sis.token).listUsers(), 400, 'invalidVers');
  });
});

describe('authentication and roles', () => {
  test('no token, a wrong token and a role without account rights are refused in SCIM terms', async () => {
    const none = await new ScimClient(`${a.url}/scim/v2`, undefined).listUsers();
    expectError(none, 401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expectError(await new ScimClient(`${a.url}/scim/v2`, `akop_${'x'.repeat(43)}`).listUsers(), 401);
    expectError(await monitoring.listUsers(), 403);
    expectError(await monitoring.createUser(studentUser(newCommonId())), 403);
    // The role is checked before the id is looked up: which ids exist is not told to a monitoring token.
    const existing = (await sis.createUser(studentUser(newCommonId()))).body.id as string;
    expectError(await monitoring.getUser(existing), 403);
    expectError(await monitoring.getUser('2819c223-7f76-453a-919d-413861904646'), 403);
  });
});

describe('create and read', () => {
  test('a User becomes an account: Common ID, names in both scripts, work address, department, affiliation', async () => {
    const commonId = newCommonId();
    const answer = await sis.createUser(studentUser(`${commonId}@${REALM}`));
    expect(answer.status).toBe(201);
    expect(answer.contentType).toContain(MEDIA_TYPE);
    const user = answer.body;
    expect(answer.headers.get('location')).toBe(`${a.url}/scim/v2/Users/${user.id}`);
    expect(answer.headers.get('etag')).toBe(user.meta.version);
    expect(user).toMatchObject({
      schemas: [USER_SCHEMA, ENTERPRISE, AKAMON],
      userName: commonId,
      externalId: `sis-${commonId}`,
      name: { formatted: 'Hanako Yamada', familyName: 'Yamada', givenName: 'Hanako' },
      emails: [{ value: `${commonId}@mail.example.ac.jp`, type: 'work', primary: true }],
      active: true,
      [ENTERPRISE]: { department: 'eng/mech' },
      // The reading comes in hiragana and is kept in katakana.
      [AKAMON]: { familyNameJa: '山田', givenNameJa: '花子', familyNameKana: 'ヤマダ', givenNameKana: 'ハナコ', affiliation: 'student', status: 'active' },
      meta: { resourceType: 'User', location: `${a.url}/scim/v2/Users/${user.id}`, version: expect.stringMatching(/^W\/"/) },
    });
    expect(user.id).toMatch(/^[0-9a-f-]{36}$/);
    // Nobody learns the initial password: not the feeding system, and the person changes it first.
    expect(JSON.stringify(user)).not.toMatch(/password/i);
    const row = await account(commonId);
    expect(row).toMatchObject({ commonId, affiliation: 'student', department: 'eng/mech', mustChangePassword: true, familyNameKana: 'ヤマダ' });
    expect(await audit(commonId)).toContainEqual(expect.objectContaining({ actor: 'operator:student-system', action: 'account.created' }));

    const read = await sis.getUser(user.id);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(user);
    expect((await sis.getUser(user.id, { 'if-none-match': user.meta.version })).status).toBe(304);
    expectError(await sis.getUser('00000000-0000-4000-8000-000000000000'), 404);
    expectError(await sis.getUser('not-a-uuid'), 404);
  });

  test('a User created inactive, or with an end of affiliation, is suspended or scheduled', async () => {
    const commonId = newCommonId();
    const user = await created(sis, studentUser(commonId, { active: false, [AKAMON]: { affiliation: 'staff', affiliationEnd: '2031-03-31' } }));
    expect(user).toMatchObject({ active: false, [AKAMON]: { affiliation: 'staff', status: 'suspended', affiliationEnd: '2031-03-30T15:00:00.000Z' } });
    expect(await account(commonId)).toMatchObject({ status: 'suspended', revokeAt: '2031-03-31T00:00:00+09:00' });
  });
});

describe('filters and pagination', () => {
  const batch = `b${Date.now().toString(36)}`;
  const ids: string[] = [];
  let before: string;

  beforeAll(async () => {
    for (let i = 0; i < 5; i += 1) ids.push((await created(sis, studentUser(newCommonId(), { externalId: `${batch}-${i}` }))).id);
    before = (await sis.getUser(ids[4]!)).body.meta.lastModified;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await sis.patchUser(ids[1]!, [{ op: 'replace', path: 'name.givenName', value: 'Taro' }])).status).toBe(200);
  });

  test('userName eq (plain or with the realm), externalId eq, meta.lastModified gt, and', async () => {
    const one = (await sis.getUser(ids[0]!)).body;
    for (const filter of [`userName eq "${one.userName}"`, `userName eq "${one.userName}@${REALM}"`, `USERNAME Eq "${one.userName}"`, `externalId eq "${batch}-0"`]) {
      const list = await sis.listUsers({ filter });
      expect({ filter, status: list.status, total: list.body.totalResults, ids: list.body.Resources.map((u: { id: string }) => u.id) }).toEqual({ filter, status: 200, total: 1, ids: [one.id] });
      expect(list.body.schemas).toEqual([LIST_RESPONSE]);
    }
    const changed = await sis.listUsers({ filter: `meta.lastModified gt "${before}" and externalId sw "${batch}"` });
    expect(changed.body.Resources.map((u: { id: string }) => u.id)).toEqual([ids[1]]);
    const since = await sis.listUsers({ filter: `meta.lastModified ge "${before}" and externalId sw "${batch}"` });
    expect(since.body.Resources.map((u: { id: string }) => u.id).sort()).toEqual([ids[1], ids[4]].sort());
    const either = await sis.listUsers({ filter: `externalId eq "${batch}-2" or (externalId eq "${batch}-3" and not (active eq false))` });
    expect(either.body.totalResults).toBe(2);
    const nobody = await sis.listUsers({ filter: 'userName eq "9999999999"' });
    expect(nobody.body).toMatchObject({ totalResults: 0, Resources: [] });
  });

  test('startIndex and count page through the results with totalResults', async () => {
    const filter = `externalId sw "${batch}-"`;
    const first = await sis.listUsers({ filter, startIndex: 1, count: 2 });
    expect(first.body).toMatchObject({ totalResults: 5, startIndex: 1, itemsPerPage: 2 });
    const last = await sis.listUsers({ filter, startIndex: 5, count: 2 });
    expect(last.body).toMatchObject({ totalResults: 5, startIndex: 5, itemsPerPage: 1 });
    const all = await sis.allUsers(filter, 2);
    expect(all.map((u) => u.id).sort()).toEqual([...ids].sort());
    expect((await sis.listUsers({ filter, count: 0 })).body).toMatchObject({ totalResults: 5, itemsPerPage: 0, Resources: [] });
    // Out of range is taken as the RFC says: startIndex below 1 is 1, a negative count is 0.
    expect((await sis.listUsers({ filter, startIndex: -3, count: 1 })).body).toMatchObject({ startIndex: 1, itemsPerPage: 1 });
    expect((await sis.listUsers({ filter, count: -1 })).body.itemsPerPage).toBe(0);
    expectError(await sis.listUsers({ filter, startIndex: 'abc' }), 400, 'invalidValue');
  });

  test("RFC 7644 3.4.2.2's examples: supported attributes filter, others are invalidFilter", async () => {
    const supported = [
      'userName eq "bjensen"',
      'name.familyName co "O\'Malley"',
      'userName sw "J"',
      'urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"',
      'meta.lastModified gt "2011-05-13T04:42:34Z"',
      'meta.lastModified ge "2011-05-13T04:42:34Z"',
      'meta.lastModified lt "2011-05-13T04:42:34Z"',
      'meta.lastModified le "2011-05-13T04:42:34Z"',
      'emails co "example.com"',
      'emails[type eq "work" and value co "@example.com"]',
      'userName eq "bjensen" and (emails co "example.com" or emails.value co "example.org")',
      `${ENTERPRISE}:department eq "eng/mech"`,
      'externalId pr',
      'id eq "2819c223-7f76-453a-919d-413861904646"',
    ];
    for (const filter of supported) expect({ filter, status: (await sis.listUsers({ filter })).status }).toEqual({ filter, status: 200 });
    const unsupported = ['title pr', 'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")', 'userType ne "Employee" and not (emails co "example.com")'];
    for (const filter of unsupported) expectError(await sis.listUsers({ filter }), 400, 'invalidFilter');
    // A time without its offset would be read in the server's own zone: refused.
    expectError(await sis.listUsers({ filter: 'meta.lastModified gt "2011-05-13T04:42:34"' }), 400, 'invalidFilter');
  });

  test('malformed and hostile filters are invalidFilter, never an error of the server', async () => {
    const hostile = [
      'userName eq',
      'userName zz "x"',
      'userName eq "unterminated',
      '(userName eq "x"',
      'userName eq "x")',
      'and or not',
      'meta.lastModified gt "yesterday"',
      'active eq "yes"',
      'userName eq 12',
      `${'('.repeat(200)}userName eq "x"${')'.repeat(200)}`,
      Array.from({ length: 80 }, (_, i) => `userName eq "${i}"`).join(' or '),
      `userName eq "${'x'.repeat(3000)}"`,
      'userName eq "x"; drop table account',
      'emails[emails[type eq "work"]]',
    ];
    for (const filter of hostile) expectError(await sis.listUsers({ filter }), 400, 'invalidFilter');
    expect((await sis.listUsers({ filter: "userName eq \"0' or '1'='1\"" })).body.totalResults).toBe(0);
  });
});

describe('replace, patch and versions', () => {
  test('PUT replaces the account: changed fields change, left-out ones are cleared, the version moves', async () => {
    const commonId = newCommonId();
    const user = await created(sis, studentUser(commonId));
    const replaced = await sis.replaceUser(
      user.id,
      studentUser(commonId, {
        name: { formatted: 'Hanako Sato', familyName: 'Sato', givenName: 'Hanako' },
        emails: [{ value: `h.sato.${commonId}@mail.example.ac.jp`, type: 'work' }],
        [ENTERPRISE]: { department: 'eng/elec' },
        [AKAMON]: { familyNameJa: '佐藤', givenNameJa: '花子', affiliation: 'student' },
      }),
      user.meta.version,
    );
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({
      name: { formatted: 'Hanako Sato', familyName: 'Sato' },
      emails: [{ value: `h.sato.${commonId}@mail.example.ac.jp` }],
      [ENTERPRISE]: { department: 'eng/elec' },
    });
    expect(replaced.body[AKAMON].familyNameKana).toBeUndefined();
    expect(replaced.body.meta.version).not.toBe(user.meta.version);
    expect(replaced.headers.get('etag')).toBe(replaced.body.meta.version);
    expect(await account(commonId)).toMatchObject({ name: 'Hanako Sato', email: `h.sato.${commonId}@mail.example.ac.jp`, department: 'eng/elec', familyNameJa: '佐藤', familyNameKana: null });
    const updates = (await audit(commonId)).filter((e) => e.action === 'account.updated');
    expect(updates.length).toBeGreaterThan(0);
    expect(updates.every((e) => e.actor === 'operator:student-system')).toBe(true);

    // A stale version is refused on PUT, PATCH and DELETE, and nothing changes.
    expectError(await sis.replaceUser(user.id, studentUser(commonId), user.meta.version), 412);
    expectError(await sis.patchUser(user.id, [{ op: 'replace', path: 'active', value: false }], user.meta.version), 412);
    expectError(await sis.deleteUser(user.id, user.meta.version), 412);
    expect(await account(commonId)).toMatchObject({ name: 'Hanako Sato', status: 'active' });
    expectError(await sis.replaceUser(user.id, studentUser(newCommonId())), 400, 'mutability');
  });

  test("a suspension tells back-channel relying parties once it has committed, not while its transaction holds the account's row", async () => {
    const account = await a.createReadyAccount();
    // The relying party reads the account as its logout token arrives (another connection, on PostgreSQL).
    let seen: string | undefined;
    const rp = http.createServer((req, res) => {
      req.resume();
      req.on('end', async () => {
        seen = (await a.deps.accounts.findByCommonId(account.commonId))?.status;
        res.end();
      });
    });
    await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
    try {
      const client = await a.createClient({ name: 'LMS', backchannelLogoutUri: `http://127.0.0.1:${(rp.address() as AddressInfo).port}/logout`, redirectUris: ['http://127.0.0.1:9/lms'] });
      const session = await signIn(new Browser(a.url), a, client, account);
      expect((await redeem(a, client, session.code!, session.verifier)).status).toBe(200);
      const [user] = (await sis.listUsers({ filter: `userName eq "${account.commonId}"` })).body.Resources;
      const suspended = await sis.patchUser(user.id, [{ op: 'replace', path: 'active', value: false }]);
      expect(suspended.status).toBe(200);
      expect(seen).toBe('suspended');
    } finally {
      await new Promise((resolve) => rp.close(resolve));
    }
  });

  test('a suspension whose write fails at a later step tells no relying party: its sessions were not ended', async () => {
    const person = await a.createReadyAccount();
    const told: string[] = [];
    const rp = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        told.push(req.url ?? '');
        res.end();
      });
    });
    await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
    const db = a.deps.database.db;
    // The database times out the write's last step (the scheduled end of affiliation), after the suspension ended the sessions.
    const stop = await refuseWrites(db, 'refuse_scim_revoke_at', { table: 'account', on: 'update', when: `new.common_id = '${person.commonId}' and new.revoke_at is not null` });
    try {
      const client = await a.createClient({ name: 'LMS', backchannelLogoutUri: `http://127.0.0.1:${(rp.address() as AddressInfo).port}/logout`, redirectUris: ['http://127.0.0.1:9/lms'] });
      const session = await signIn(new Browser(a.url), a, client, person);
      expect((await redeem(a, client, session.code!, session.verifier)).status).toBe(200);
      const [user] = (await sis.listUsers({ filter: `userName eq "${person.commonId}"` })).body.Resources;
      const change = [
        { op: 'replace', path: 'active', value: false },
        { op: 'replace', path: `${AKAMON}:affiliationEnd`, value: new Date(Date.now() + 30 * 86_400_000).toISOString() },
      ];
      expectError(await sis.patchUser(user.id, change), 503);
      // Deferred deliveries run before the answer: none was made, and the session is still there.
      expect(told).toEqual([]);
      expect((await account(person.commonId)).status).toBe('active');
      expect(await sessionsOf(person.id)).toBe(1);

      await stop();
      expect((await sis.patchUser(user.id, change)).status).toBe(200);
      expect(told).toEqual(['/logout']);
      expect(await sessionsOf(person.id)).toBe(0);
    } finally {
      await stop();
      await new Promise((resolve) => rp.close(resolve));
    }
  });

  test('parallel writes with one version, on two nodes: exactly one is applied, the others get 412', async () => {
    const commonId = newCommonId();
    const user = await created(sis, studentUser(commonId));
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? onB : sis).patchUser(user.id, [{ op: 'replace', path: 'displayName', value: `Name ${i}` }], user.meta.version)));
    const applied = answers.filter((x) => x.status === 200);
    expect(applied).toHaveLength(1);
    for (const refused of answers.filter((x) => x.status !== 200)) expectError(refused, 412);
    expect((await account(commonId)).name).toBe(applied[0]!.body.displayName);
    expect((await audit(commonId)).filter((e) => e.action === 'account.updated')).toHaveLength(1);
  });

  test('PATCH adds, replaces and removes, with paths, value filters and without a path', async () => {
    const commonId = newCommonId();
    const user = await created(sis, studentUser(commonId, { name: { formatted: 'Hanako Yamada', familyName: 'Yamada' } }));
    const patched = await sis.patchUser(
      user.id,
      [
        { op: 'add', path: 'name.givenName', value: 'Hanako' },
        { op: 'replace', path: 'emails[type eq "work"].value', value: `new.${commonId}@mail.example.ac.jp` },
        { op: 'remove', path: `${AKAMON}:givenNameJa` },
        { op: 'Replace', path: `${ENTERPRISE}:department`, value: 'eng/civil' },
        { op: 'replace', value: { active: 'False', [AKAMON]: { givenNameKana: 'はなこ' } } },
      ],
      user.meta.version,
    );
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      name: { givenName: 'Hanako' },
      emails: [{ value: `new.${commonId}@mail.example.ac.jp`, type: 'work' }],
      active: false,
      [ENTERPRISE]: { department: 'eng/civil' },
    });
    expect(patched.body[AKAMON]).toMatchObject({ givenNameKana: 'ハナコ', status: 'suspended' });
    expect(patched.body[AKAMON].givenNameJa).toBeUndefined();
    expect(await account(commonId)).toMatchObject({ status: 'suspended', department: 'eng/civil', givenNameJa: null, email: `new.${commonId}@mail.example.ac.jp` });
    expect(await audit(commonId)).toContainEqual(expect.objectContaining({ actor: 'operator:student-system', action: 'account.suspended' }));

    const back = await sis.patchUser(user.id, [{ op: 'replace', path: 'active', value: true }]);
    expect(back.body.active).toBe(true);
    expect((await account(commonId)).status).toBe('active');

    // The scheduled end of affiliation: set, then removed.
    const scheduled = await sis.patchUser(user.id, [{ op: 'add', path: `${AKAMON}:affiliationEnd`, value: '2030-09-30T15:00:00Z' }]);
    expect(scheduled.body[AKAMON].affiliationEnd).toBe('2030-09-30T15:00:00.000Z');
    expect((await account(commonId)).revokeAt).toBe('2030-10-01T00:00:00+09:00');
    const cancelled = await sis.patchUser(user.id, [{ op: 'remove', path: `${AKAMON}:affiliationEnd` }]);
    expect(cancelled.body[AKAMON].affiliationEnd).toBeUndefined();
    expect((await account(commonId)).revokeAt).toBeNull();

    const renamed = await sis.patchUser(user.id, [{ op: 'replace', path: 'displayName', value: 'Hanako Suzuki' }]);
    expect(renamed.body).toMatchObject({ displayName: 'Hanako Suzuki', name: { formatted: 'Hanako Suzuki' } });

    const removedEmail = await sis.patchUser(user.id, [{ op: 'remove', path: 'emails[type eq "work"]' }]);
    expect(removedEmail.body.emails).toBeUndefined();
    const addedEmail = await sis.patchUser(user.id, [{ op: 'add', path: 'emails[type eq "work"].value', value: `again.${commonId}@mail.example.ac.jp` }]);
    expect(addedEmail.body.emails).toEqual([{ value: `again.${commonId}@mail.example.ac.jp`, type: 'work', primary: true }]);
  });

  test('PATCH errors: noTarget, mutability, invalidPath, invalidValue, invalidSyntax', async () => {
    const commonId = newCommonId();
    const user = await created(sis, studentUser(commonId));
    expectError(await sis.patchUser(user.id, [{ op: 'replace', path: 'emails[type eq "home"].value', value: 'x@example.com' }]), 400, 'noTarget');
    expectError(await sis.patchUser(user.id, [{ op: 'remove' }]), 400, 'noTarget');
    expectError(await sis.patchUser(user.id, [{ op: 'replace', path: 'userName', value: newCommonId() }]), 400, 'mutability');
    expectError(await sis.patchUser(user.id, [{ op: 'replace', path: 'id', value: 'mine' }]), 400, 'mutability');
    expectError(await sis.patchUser(user.id, [{ op: 'replace', path: 'meta.version', value: 'W/"1"' }]), 400, 'mutability');
    expectError(await sis.patchUser(user.id, [{ op: 'replace', path: 'nickName', value: 'Babs' }]), 400, 'invalidPath');
    expectError(await sis.patchUser(user.id, [{ op: 'replace', path: 'name.middleName', value: 'X' }]), 400, 'invalidPath');
    expectError(await sis.patchUser(user.id, [{ op: 'replace', path: 'emails[type zz "work"].value', value: 'x' }]), 400, 'invalidFilter');
    expectError(await sis.patchUser(user.id, [{ op: 'move', path: 'active', value: true }]), 400, 'invalidValue');
    expectError(await sis.patchUser(user.id, [{ op: 'replace', path: 'active', value: 'maybe' }]), 400, 'invalidValue');
    expectError(await sis.patchUser(user.id, [{ op: 'replace', path: 'name.familyName', value: '山田' }]), 400, 'invalidValue');
    expectError(await sis.patchUser(user.id, [{ op: 'add', path: 'emails', value: { value: 'home@example.com', type: 'home' } }]), 400, 'invalidValue');
    expectError(await sis.request('PATCH', `/Users/${user.id}`, { Operations: [{ op: 'replace', path: 'active', value: false }] }), 400, 'invalidSyntax');
    // None of it was written.
    expect(await account(commonId)).toMatchObject({ status: 'active', familyName: 'Yamada', email: `${commonId}@mail.example.ac.jp` });
  });
});

describe('bad input is a SCIM error, never a server error', () => {
  test('malformed JSON, wrong types, unknown attributes, oversized bodies, missing schemas', async () => {
    const commonId = newCommonId();
    expectError(await sis.request('POST', '/Users', '{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": '), 400, 'invalidSyntax');
    expectError(await sis.request('POST', '/Users', '[1, 2]'), 400, 'invalidSyntax');
    // A body that is not JSON is not read as an empty one: 415, as on the admin API.
    expectError(await sis.request('POST', '/Users', 'userName=1', { 'content-type': 'text/plain' }), 415);
    expectError(await sis.createUser(studentUser(commonId, { userName: 1234567890 })), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser('abc')), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser(commonId, { active: 'maybe' })), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser(commonId, { name: 'Hanako' })), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser(commonId, { emails: 'x@example.com' })), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser(commonId, { nickName: 'Babs' })), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser(commonId, { name: { formatted: 'H Y', middleName: 'X' } })), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser(commonId, { emails: [{ value: 'me@example.com', type: 'home' }] })), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser(commonId, { [AKAMON]: { affiliation: 'pirate' } })), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser(commonId, { [AKAMON]: { affiliation: 'student', affiliationEnd: 'soon' } })), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser(commonId, { [AKAMON]: { affiliation: 'student', familyNameKana: 'Yamada' } })), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser(commonId, { schemas: undefined })), 400, 'invalidSyntax');
    expectError(await sis.createUser(studentUser(commonId, { schemas: [USER_SCHEMA, 'urn:example:other'] })), 400, 'invalidValue');
    expectError(await sis.createUser(studentUser(commonId, { name: { formatted: 'Hanako\u0000' } })), 400, 'invalidValue');
    const huge = await sis.createUser(studentUser(commonId, { displayName: 'x'.repeat(200_000) }));
    expectError(huge, 413);
    expect(huge.headers.get('content-type')).toContain(MEDIA_TYPE);
    // None of it made an account.
    expect((await sis.listUsers({ filter: `userName eq "${commonId}"` })).body.totalResults).toBe(0);
  });

  // Found by a probe of the operator surfaces: 30,000 nested lists (well under the body limit)
  // overflowed the stack on the way to the account (500), and a key given twice was taken as its last.
  test('JSON nested deeper than 32 levels, or naming a key twice, is an invalidSyntax 400 and makes no account', async () => {
    const commonId = newCommonId();
    const deep = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;
    const nested = await sis.request('POST', '/Users', `{"schemas":["${USER_SCHEMA}",${deep(30_000)}],"userName":"${commonId}","displayName":"Deep"}`);
    expectError(nested, 400, 'invalidSyntax');
    expect(nested.body.detail).toMatch(/deeper than 32 levels/);
    const user = JSON.stringify(studentUser(commonId));
    const last = newCommonId();
    const twice = await sis.request('POST', '/Users', `${user.slice(0, -1)},"userName":"${last}"}`);
    expectError(twice, 400, 'invalidSyntax');
    expect(twice.body.detail).toMatch(/the userName field is given more than once/);
    for (const id of [commonId, last]) expect((await sis.listUsers({ filter: `userName eq "${id}"` })).body.totalResults).toBe(0);
  });
});

describe('idempotent create', () => {
  test('a re-sent create answers the existing User; a different one under the same userName is a conflict', async () => {
    const commonId = newCommonId();
    const body = studentUser(commonId);
    const first = await sis.createUser(body);
    expect(first.status).toBe(201);
    const again = await sis.createUser(body);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    // The same externalId: the same person from the same system, even if a field moved meanwhile.
    const sameSource = await sis.createUser(studentUser(`${commonId}@${REALM}`, { externalId: `sis-${commonId}`, displayName: 'H. Yamada', name: undefined }));
    expect(sameSource.status).toBe(200);
    expect(sameSource.body.id).toBe(first.body.id);
    expectError(await sis.createUser(studentUser(commonId, { externalId: 'hr-999', name: { formatted: 'Taro Tanaka' } })), 409, 'uniqueness');
    expect((await sis.listUsers({ filter: `userName eq "${commonId}"` })).body.totalResults).toBe(1);
    expect((await audit(commonId)).filter((e) => e.action === 'account.created')).toHaveLength(1);
  });

  test('two nodes creating the same userName at once end with one account', async () => {
    const commonId = newCommonId();
    const body = studentUser(commonId);
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? onB : sis).createUser(body)));
    const statuses = answers.map((x) => x.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.every((s) => s === 200 || s === 201)).toBe(true);
    expect(new Set(answers.map((x) => x.body.id)).size).toBe(1);
    expect((await onB.listUsers({ filter: `userName eq "${commonId}"` })).body.totalResults).toBe(1);
  });

  test('a create hashes the initial password before its transaction, which would otherwise hold a connection (on PGlite the only one) over the hash', async () => {
    const hashes: boolean[] = [];
    const stop = a.deps.hasher.observe(() => hashes.push(inUnitOfWork()));
    try {
      await created(sis, studentUser(newCommonId(), { active: false }));
    } finally {
      stop();
    }
    expect(hashes).toEqual([false]);
    // No hash is spent on a create that is refused (out of the token's scope, an invalid address) or re-sent.
    hashes.length = 0;
    const counting = a.deps.hasher.observe(() => hashes.push(inUnitOfWork()));
    try {
      const user = studentUser(newCommonId(), { [ENTERPRISE]: { department: 'sci/phys' } });
      expectError(await eng.createUser(user), 403);
      expectError(await sis.createUser({ ...user, emails: [{ value: 'not an address', type: 'work' }] }), 400, 'invalidValue');
      expect((await sis.createUser(user)).status).toBe(201);
      expect((await sis.createUser(user)).status).toBe(200);
      expectError(await monitoring.createUser(studentUser(user.userName as string)), 403);
    } finally {
      counting();
    }
    expect(hashes).toEqual([false]);
  });

  test('a create that fails at a later step leaves no account, and its retry creates the whole User', async () => {
    const commonId = newCommonId();
    const db = a.deps.database.db;
    // The database times out the suspension of this one account (a stall after the row was inserted).
    const stop = await refuseWrites(db, 'refuse_scim_suspend', { table: 'account', on: 'update', when: `new.common_id = '${commonId}' and new.status = 'suspended'` });
    const body = studentUser(commonId, { active: false });
    try {
      const stalled = await sis.createUser(body);
      expectError(stalled, 503);
      expect(Number(stalled.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await stop();
    }
    expect((await sis.listUsers({ filter: `userName eq "${commonId}"` })).body.totalResults).toBe(0);
    expect((await adminApi(a, 'GET', `/accounts/${commonId}`)).status).toBe(404);
    const retried = await sis.createUser(body);
    expect(retried.status).toBe(201);
    expect(retried.body).toMatchObject({ userName: commonId, active: false });
    expect((await audit(commonId)).filter((e) => e.action === 'account.created')).toHaveLength(1);
  });
});

describe('scope', () => {
  test('a token scoped to eng neither sees nor changes an account of sci, and cannot move its own out', async () => {
    const sci = await created(sis, studentUser(newCommonId(), { [ENTERPRISE]: { department: 'sci/phys' } }));
    expectError(await eng.getUser(sci.id), 404);
    expect((await eng.listUsers({ filter: `userName eq "${sci.userName}"` })).body.totalResults).toBe(0);
    expect((await eng.listUsers({ filter: `${ENTERPRISE}:department sw "sci"` })).body.totalResults).toBe(0);
    expectError(await eng.replaceUser(sci.id, studentUser(sci.userName, { [ENTERPRISE]: { department: 'sci/phys' } })), 404);
    expectError(await eng.patchUser(sci.id, [{ op: 'replace', path: 'active', value: false }]), 404);
    expectError(await eng.deleteUser(sci.id), 404);
    expect((await account(sci.userName)).status).toBe('active');

    expectError(await eng.createUser(studentUser(newCommonId(), { [ENTERPRISE]: { department: 'sci' } })), 403);
    // The eng token's list holds only eng accounts.
    const mine = await created(eng, studentUser(newCommonId(), { [ENTERPRISE]: { department: 'eng' } }));
    const listed = await eng.allUsers('userName pr', 100);
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((u) => /^eng(\/|$)/.test(u[ENTERPRISE]?.department ?? ''))).toBe(true);
    expectError(await eng.patchUser(mine.id, [{ op: 'replace', path: `${ENTERPRISE}:department`, value: 'sci' }]), 403);
    expect((await account(mine.userName)).department).toBe('eng');
    // A taken Common ID outside the scope: a conflict, told no more than that.
    expectError(await eng.createUser(studentUser(sci.userName, { [ENTERPRISE]: { department: 'eng' } })), 409, 'uniqueness');
  });
});

describe('delete is revocation', () => {
  test('DELETE revokes at once; the User stays, inactive, and cannot be reactivated', async () => {
    const commonId = newCommonId();
    const user = await created(sis, studentUser(commonId));
    const deleted = await sis.deleteUser(user.id, user.meta.version);
    expect(deleted.status).toBe(204);
    expect(await account(commonId)).toMatchObject({ status: 'revoked', revokeReason: 'deprovisioned' });
    expect(await audit(commonId)).toContainEqual(expect.objectContaining({ actor: 'operator:student-system', action: 'account.revoked' }));
    const read = await sis.getUser(user.id);
    expect(read.body).toMatchObject({ active: false, [AKAMON]: { status: 'revoked', revokedAt: expect.any(String) } });
    expectError(await sis.patchUser(user.id, [{ op: 'replace', path: 'active', value: true }]), 400, 'mutability');
    expectError(await sis.replaceUser(user.id, studentUser(commonId)), 400, 'mutability');
    expect((await sis.deleteUser(user.id)).status).toBe(204);
    expect((await account(commonId)).status).toBe('revoked');
  });

  test('with AKAMON_SCIM_DELETE_GRACE_DAYS the revocation is scheduled that many days ahead', async () => {
    const commonId = newCommonId();
    const user = await created(onB, studentUser(commonId));
    const started = Date.now();
    expect((await onB.deleteUser(user.id)).status).toBe(204);
    const after = (await onB.getUser(user.id)).body;
    expect(after.active).toBe(true);
    const end = Date.parse(after[AKAMON].affiliationEnd);
    expect(end - started).toBeGreaterThanOrEqual(30 * 86_400_000 - 5_000);
    expect(end - started).toBeLessThanOrEqual(30 * 86_400_000 + 60_000);
    expect(await account(commonId)).toMatchObject({ status: 'active', revokeReason: 'deprovisioned' });
    expect(await audit(commonId)).toContainEqual(expect.objectContaining({ actor: 'operator:student-system', action: 'account.revocation_scheduled' }));
    // Deleting again never postpones it.
    expect((await onB.deleteUser(user.id)).status).toBe(204);
    expect(Date.parse((await onB.getUser(user.id)).body[AKAMON].affiliationEnd)).toBe(end);
  });
});

test('no SCIM request above ended in a server error on either node', () => {
  const logs = [...a.logs, ...b.logs].join('\n');
  expect(logs).toContain('scim request');
  expect(logs).not.toContain('scim request failed');
  // 503 with Retry-After is the answer to a stalled database (staged once above), never another 5xx.
  expect(logs).not.toMatch(/"status":5(?!03)\d\d/);
});
