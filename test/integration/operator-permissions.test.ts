import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { adminApi as adminRouter } from '../../src/admin/admin-api.ts';
import { OPERATOR_LOOKUP_ROWS, OPERATOR_LOOKUPS } from '../../src/config/defaults.ts';
import { PERMISSIONS, type Permission, ROLES, type Role, type Scope } from '../../src/operator/permissions.ts';
import { adminApi, newCommonId, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { runCli } from '../support/processes.ts';

/**
 * Every admin API route x every role: a role without the permission gets 403 forbidden; a role with
 * it succeeds on an account of its scope, and an account outside the scope is answered exactly as
 * one that does not exist. The list of routes is read from the router itself, so a route added
 * without an entry here fails the first test.
 */

type Call = { method: string; path: string; body?: unknown };
interface Target {
  /** An account this role may act on (in its scope), fresh for the role. */
  mine: string;
  /** An account outside the office's and help desk's scope. */
  theirs: string;
  serial: string;
  /** The token lent outside the scope (for the collect check). */
  theirSerial: string;
  clientId: string;
}

interface RouteCase {
  permission: Permission;
  call(t: Target): Call;
  /** The same call on an account outside the scope, for routes that name one. */
  outside?(t: Target): Call;
  /** What success looks like, when it is not a 2xx (a route whose precondition cannot hold here). */
  allowed?: { status: number; error: string };
}

const state: { clientId?: string; apiTokenId?: number } = {};

const ROUTES: Record<string, RouteCase> = {
  'POST /accounts': {
    permission: 'account.create',
    call: () => ({ method: 'POST', path: '/accounts', body: { commonId: newCommonId(), name: 'Made Here', affiliation: 'student', department: 'eng/civil' } }),
  },
  'GET /accounts': { permission: 'account.read', call: () => ({ method: 'GET', path: '/accounts?limit=1000' }) },
  'GET /accounts/:commonId': { permission: 'account.read', call: (t) => ({ method: 'GET', path: `/accounts/${t.mine}` }), outside: (t) => ({ method: 'GET', path: `/accounts/${t.theirs}` }) },
  'PATCH /accounts/:commonId': {
    permission: 'account.update',
    call: (t) => ({ method: 'PATCH', path: `/accounts/${t.mine}`, body: { requireMfa: true } }),
    outside: (t) => ({ method: 'PATCH', path: `/accounts/${t.theirs}`, body: { requireMfa: true } }),
  },
  'POST /accounts/:commonId/reset-mfa': {
    permission: 'account.credentials',
    call: (t) => ({ method: 'POST', path: `/accounts/${t.mine}/reset-mfa`, body: { reason: 'lost phone' } }),
    outside: (t) => ({ method: 'POST', path: `/accounts/${t.theirs}/reset-mfa`, body: {} }),
  },
  'POST /accounts/:commonId/reissue-password': {
    permission: 'account.credentials',
    call: (t) => ({ method: 'POST', path: `/accounts/${t.mine}/reissue-password`, body: { checked: 'student ID card' } }),
    outside: (t) => ({ method: 'POST', path: `/accounts/${t.theirs}/reissue-password`, body: {} }),
  },
  'POST /accounts/:commonId/revoke': {
    permission: 'account.status',
    call: (t) => ({ method: 'POST', path: `/accounts/${t.mine}/revoke`, body: { on: '2031-03-31', reason: 'graduation' } }),
    outside: (t) => ({ method: 'POST', path: `/accounts/${t.theirs}/revoke`, body: { on: '2031-03-31' } }),
  },
  'DELETE /accounts/:commonId/revocation': {
    permission: 'account.status',
    call: (t) => ({ method: 'DELETE', path: `/accounts/${t.mine}/revocation` }),
    outside: (t) => ({ method: 'DELETE', path: `/accounts/${t.theirs}/revocation` }),
  },
  'GET /revocations': { permission: 'account.read', call: () => ({ method: 'GET', path: '/revocations' }) },
  'POST /accounts/:commonId/unlink-idv': {
    permission: 'account.unlink_idv',
    call: (t) => ({ method: 'POST', path: `/accounts/${t.mine}/unlink-idv` }),
    // Nobody here has linked an identity: the role passed and the account was found.
    allowed: { status: 404, error: 'link_not_found' },
  },
  'POST /accounts/:commonId/suspend': {
    permission: 'account.status',
    call: (t) => ({ method: 'POST', path: `/accounts/${t.mine}/suspend`, body: { reason: 'asked by the department' } }),
    outside: (t) => ({ method: 'POST', path: `/accounts/${t.theirs}/suspend` }),
  },
  'POST /accounts/:commonId/activate': {
    permission: 'account.status',
    call: (t) => ({ method: 'POST', path: `/accounts/${t.mine}/activate` }),
    outside: (t) => ({ method: 'POST', path: `/accounts/${t.theirs}/activate` }),
  },
  'POST /accounts/:commonId/unlock': {
    permission: 'account.credentials',
    call: (t) => ({ method: 'POST', path: `/accounts/${t.mine}/unlock` }),
    outside: (t) => ({ method: 'POST', path: `/accounts/${t.theirs}/unlock` }),
  },
  'POST /clients': { permission: 'client.write', call: () => ({ method: 'POST', path: '/clients', body: { name: 'Matrix RP', redirectUris: ['http://127.0.0.1:9/cb'] } }) },
  'GET /clients': { permission: 'client.read', call: () => ({ method: 'GET', path: '/clients' }) },
  'GET /clients/:clientId': { permission: 'client.read', call: (t) => ({ method: 'GET', path: `/clients/${t.clientId}` }) },
  'POST /clients/:clientId/accounts': { permission: 'client.write', call: (t) => ({ method: 'POST', path: `/clients/${t.clientId}/accounts`, body: { commonId: t.mine, effect: 'deny' } }) },
  'DELETE /clients/:clientId/accounts/:commonId': { permission: 'client.write', call: (t) => ({ method: 'DELETE', path: `/clients/${t.clientId}/accounts/${t.mine}` }) },
  'POST /education': {
    permission: 'education.record',
    call: (t) => ({ method: 'POST', path: '/education', body: { commonId: t.mine, year: 2026, passedOn: '2026-05-01' } }),
    outside: (t) => ({ method: 'POST', path: '/education', body: { commonId: t.theirs, year: 2026, passedOn: '2026-05-01' } }),
  },
  'PATCH /clients/:clientId': { permission: 'client.write', call: (t) => ({ method: 'PATCH', path: `/clients/${t.clientId}`, body: { name: 'Matrix RP renamed' } }) },
  'DELETE /clients/:clientId': { permission: 'client.write', call: (t) => ({ method: 'DELETE', path: `/clients/${t.clientId}` }) },
  'POST /tokens': {
    permission: 'token.load',
    call: () => ({ method: 'POST', path: '/tokens', body: { serial: `LOAD${newCommonId()}`, secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', digits: 6, period: 30 } }),
  },
  'GET /tokens': { permission: 'token.read', call: () => ({ method: 'GET', path: '/tokens' }) },
  'POST /tokens/:serial/assign': {
    permission: 'token.lend',
    call: (t) => ({ method: 'POST', path: `/tokens/${t.serial}/assign`, body: { commonId: t.mine } }),
    outside: (t) => ({ method: 'POST', path: `/tokens/${t.serial}/assign`, body: { commonId: t.theirs } }),
  },
  'POST /tokens/:serial/unassign': {
    permission: 'token.lend',
    call: (t) => ({ method: 'POST', path: `/tokens/${t.serial}/unassign` }),
    outside: (t) => ({ method: 'POST', path: `/tokens/${t.theirSerial}/unassign` }),
  },
  'POST /keys/rotate': { permission: 'keys.rotate', call: () => ({ method: 'POST', path: '/keys/rotate' }) },
  'GET /audit': { permission: 'audit.read', call: () => ({ method: 'GET', path: '/audit' }) },
  'GET /signins': { permission: 'signins.read', call: (t) => ({ method: 'GET', path: `/signins?account=${t.mine}` }), outside: (t) => ({ method: 'GET', path: `/signins?account=${t.theirs}` }) },
  'POST /operators/tokens': {
    permission: 'operator.manage',
    call: () => ({ method: 'POST', path: '/operators/tokens', body: { name: 'matrix', role: 'helpdesk', departments: ['eng'], expiresInDays: 7 } }),
  },
  'GET /operators/tokens': { permission: 'operator.manage', call: () => ({ method: 'GET', path: '/operators/tokens' }) },
  'DELETE /operators/tokens/:id': { permission: 'operator.manage', call: () => ({ method: 'DELETE', path: `/operators/tokens/${state.apiTokenId ?? 999999}` }) },
  'PUT /operators/people/:commonId': { permission: 'operator.manage', call: (t) => ({ method: 'PUT', path: `/operators/people/${t.mine}`, body: { role: 'office', departments: ['eng'] } }) },
  'DELETE /operators/people/:commonId': { permission: 'operator.manage', call: (t) => ({ method: 'DELETE', path: `/operators/people/${t.mine}` }) },
  'GET /operators/people': { permission: 'operator.manage', call: () => ({ method: 'GET', path: '/operators/people' }) },
  'GET /dashboard': { permission: 'dashboard.read', call: () => ({ method: 'GET', path: '/dashboard' }) },
};

const SCOPES: Record<Role, Scope | null> = {
  admin: null,
  office: { departments: ['eng'], affiliations: [] },
  helpdesk: { departments: ['eng'], affiliations: ['student'] },
  auditor: null,
  provisioning: { departments: ['eng'], affiliations: [] },
  monitoring: null,
};

let akamon: RunningAkamon;
const tokens = {} as Record<Role, string>;
const targets = {} as Record<Role, Target>;

async function call(token: string, c: Call): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(`${akamon.url}/admin/api${c.path}`, {
    method: c.method,
    headers: { authorization: `Bearer ${token}`, ...(c.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: c.body === undefined ? undefined : JSON.stringify(c.body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

async function account(department: string, affiliation = 'student'): Promise<string> {
  const commonId = newCommonId();
  await akamon.deps.accountService.create({ commonId, name: `Matrix ${department}`, affiliation, email: null, profile: { department } });
  return commonId;
}

async function lentToken(commonId?: string): Promise<string> {
  const serial = `MX${newCommonId()}`;
  await akamon.deps.tokens.add({ serial, secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', digits: 6, period: 30 });
  if (commonId) await akamon.deps.tokens.assign(serial, (await akamon.deps.accountService.get(commonId)).id);
  return serial;
}

beforeAll(async () => {
  akamon = await startAkamon();
  const theirs = await account('sci');
  const theirSerial = await lentToken(theirs);
  const { clientId } = (await adminApi(akamon, 'POST', '/clients', { name: 'Standing RP', redirectUris: ['http://127.0.0.1:9/cb'] })).body;
  for (const role of ROLES) {
    tokens[role] = await akamon.deps.operators.create({ name: `matrix-${role}`, role, scope: SCOPES[role], expiresAt: new Date(Date.now() + 86_400_000), createdBy: null });
    targets[role] = { mine: await account('eng/mech'), theirs, serial: await lentToken(), theirSerial, clientId };
  }
}, 120_000);

afterAll(async () => {
  await akamon?.close();
});

describe('the admin API permission matrix', () => {
  test('every route of the admin API has an entry here (a new route must say which permission it needs)', () => {
    const router = adminRouter({} as never);
    // The last route answers what no other serves (404, or 405 with Allow): it acts on nothing.
    const routes = router.stack
      .filter((layer) => layer.methods.length && !String(layer.path).endsWith('/{*rest}'))
      .flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${String(layer.path).replace('/admin/api', '')}`));
    expect(routes.sort()).toEqual(Object.keys(ROUTES).sort());
    // Every permission of the table is used by some route, but those checked outside the admin API
    // (the metrics endpoint: its own test, test/integration/metrics.test.ts).
    const OUTSIDE_ADMIN_API: Permission[] = ['metrics.read'];
    expect(new Set([...Object.values(ROUTES).map((r) => r.permission), ...OUTSIDE_ADMIN_API])).toEqual(new Set(Object.keys(PERMISSIONS)));
  });

  for (const role of ROLES) {
    test(`${role}: forbidden without the permission, allowed with it, out-of-scope accounts are unknown`, async () => {
      const granted = (permission: Permission) => (PERMISSIONS[permission] as readonly Role[]).includes(role);
      const outcomes: string[] = [];
      for (const [name, route] of Object.entries(ROUTES)) {
        const t = { ...targets[role], clientId: name.includes('/clients/:clientId') && role === 'admin' ? (state.clientId ?? targets[role].clientId) : targets[role].clientId };
        const answer = await call(tokens[role], route.call(t));
        if (!granted(route.permission)) {
          outcomes.push(`${name}: ${answer.status} ${answer.body.error}`);
          expect(`${name}: ${answer.status} ${answer.body.error}`).toBe(`${name}: 403 forbidden`);
          continue;
        }
        const expected = route.allowed ? `${route.allowed.status} ${route.allowed.error}` : 'ok';
        const got = answer.status >= 200 && answer.status < 300 ? 'ok' : `${answer.status} ${answer.body.error}`;
        expect(`${name}: ${got}`).toBe(`${name}: ${expected}`);
        if (name === 'POST /clients') state.clientId = answer.body.clientId;
        if (name === 'POST /operators/tokens')
          state.apiTokenId = (await call(tokens.admin, { method: 'GET', path: '/operators/tokens' })).body.tokens.find((x: { name: string }) => x.name === 'matrix').id;
        if (route.outside && SCOPES[role]) {
          const outside = await call(tokens[role], route.outside(t));
          if (name === 'POST /tokens/:serial/unassign') {
            expect(`${name} outside: ${outside.status} ${outside.body.error}`).toBe(`${name} outside: 404 token_not_found`);
            continue;
          }
          const missing = await call(tokens[role], JSON.parse(JSON.stringify(route.outside(t)).replaceAll(t.theirs, '0000000001')));
          // The same status, code and text (but for the number) as an account that does not exist.
          expect({ ...outside, body: { ...outside.body, error_description: String(outside.body.error_description).replace(t.theirs, 'N') } }).toEqual({
            ...missing,
            body: { ...missing.body, error_description: String(missing.body.error_description).replace('0000000001', 'N') },
          });
          expect(`${name} outside: ${outside.status} ${outside.body.error}`).toBe(`${name} outside: 404 account_not_found`);
        }
      }
      expect(outcomes.length).toBe(Object.values(ROUTES).filter((r) => !granted(r.permission)).length);
    }, 60_000);
  }

  test('a scoped office lists, searches and reads the logs of its own accounts only, and cannot create outside its scope', async () => {
    const office = tokens.office;
    const listed = (await call(office, { method: 'GET', path: '/accounts?limit=1000' })).body.accounts.map((a: { department: string }) => a.department);
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((d: string) => d === 'eng' || d.startsWith('eng/'))).toBe(true);
    const all = (await call(tokens.admin, { method: 'GET', path: '/accounts?limit=1000' })).body.accounts;
    expect(all.some((a: { department: string }) => a.department === 'sci')).toBe(true);
    const search = await call(office, { method: 'GET', path: `/accounts?q=${targets.office.theirs}` });
    expect(search.body.accounts).toEqual([]);
    const byName = await call(office, { method: 'GET', path: `/accounts?q=${encodeURIComponent('Matrix sci')}` });
    expect(byName.body.accounts).toEqual([]);
    expect((await call(tokens.admin, { method: 'GET', path: `/accounts?q=${encodeURIComponent('Matrix sci')}` })).body.accounts.length).toBeGreaterThan(0);
    const outside = await call(office, { method: 'POST', path: '/accounts', body: { commonId: newCommonId(), name: 'Elsewhere', affiliation: 'student', department: 'sci' } });
    expect(`${outside.status} ${outside.body.error}`).toBe('403 out_of_scope');
    const moved = await call(office, { method: 'PATCH', path: `/accounts/${targets.office.mine}`, body: { department: 'sci' } });
    expect(`${moved.status} ${moved.body.error}`).toBe('403 out_of_scope');
    // The helpdesk is limited to students of eng: a staff member of eng is outside it.
    const staff = await account('eng', 'staff');
    expect((await call(tokens.helpdesk, { method: 'GET', path: `/accounts/${staff}` })).status).toBe(404);
    expect((await call(tokens.office, { method: 'GET', path: `/accounts/${staff}` })).status).toBe(200);
  });

  test('the audit trail names the operator of each action; expired and revoked tokens are refused', async () => {
    const { events } = (await call(tokens.auditor, { method: 'GET', path: `/audit?account=${targets.office.mine}` })).body;
    expect(events).toEqual(expect.arrayContaining([expect.objectContaining({ actor: 'operator:matrix-office', action: 'account.suspended', details: { reason: 'asked by the department' } })]));
    expect(events).toEqual(expect.arrayContaining([expect.objectContaining({ actor: 'operator:matrix-office', action: 'password.reissued', details: { checked: 'student ID card' } })]));
    const expired = await akamon.deps.operators.create({ name: 'expired', role: 'admin', scope: null, expiresAt: new Date(Date.now() - 1000), createdBy: null });
    expect((await call(expired, { method: 'GET', path: '/accounts' })).status).toBe(401);
    const made = await call(tokens.admin, { method: 'POST', path: '/operators/tokens', body: { name: 'short lived', role: 'auditor', expiresInDays: 1 } });
    expect(made.status).toBe(201);
    expect((await call(made.body.token, { method: 'GET', path: '/audit' })).status).toBe(200);
    const id = (await call(tokens.admin, { method: 'GET', path: '/operators/tokens' })).body.tokens.find((x: { name: string }) => x.name === 'short lived').id;
    expect((await call(tokens.admin, { method: 'DELETE', path: `/operators/tokens/${id}` })).status).toBe(204);
    expect((await call(made.body.token, { method: 'GET', path: '/audit' })).status).toBe(401);
    const bad = await call(tokens.admin, { method: 'POST', path: '/operators/tokens', body: { name: 'x', role: 'superuser' } });
    expect(`${bad.status} ${bad.body.error}`).toBe('400 invalid_request');
    const tooLong = await call(tokens.admin, { method: 'POST', path: '/operators/tokens', body: { name: 'x', role: 'admin', expiresInDays: 4000 } });
    expect(tooLong.status).toBe(400);
    // An office or provisioning role with no scope is refused unless the whole university is said on purpose.
    for (const role of ['office', 'provisioning']) {
      const forgotten = await call(tokens.admin, { method: 'POST', path: '/operators/tokens', body: { name: 'no scope', role } });
      expect(`${role} ${forgotten.status} ${forgotten.body.error}`).toBe(`${role} 400 invalid_request`);
      const meant = await call(tokens.admin, { method: 'POST', path: '/operators/tokens', body: { name: 'whole', role, wholeUniversity: true } });
      expect(`${role} ${meant.status} ${JSON.stringify(meant.body.scope)}`).toBe(`${role} 201 null`);
    }
    const both = await call(tokens.admin, { method: 'POST', path: '/operators/tokens', body: { name: 'both', role: 'office', departments: ['eng'], wholeUniversity: true } });
    expect(both.status).toBe(400);
  });

  test('a scoped auditor reads the audit trail of its scope but not the university-wide dashboard or metrics', async () => {
    const made = await call(tokens.admin, { method: 'POST', path: '/operators/tokens', body: { name: 'faculty audit', role: 'auditor', departments: ['eng'] } });
    expect(made.status).toBe(201);
    expect((await call(made.body.token, { method: 'GET', path: '/audit' })).status).toBe(200);
    const dashboard = await call(made.body.token, { method: 'GET', path: '/dashboard' });
    expect(`${dashboard.status} ${dashboard.body.error}`).toBe('403 forbidden');
    expect((await call(tokens.auditor, { method: 'GET', path: '/dashboard' })).status).toBe(200);
    const monitor = await call(tokens.admin, { method: 'POST', path: '/operators/tokens', body: { name: 'faculty monitor', role: 'monitoring', departments: ['eng'] } });
    expect(`${monitor.status} ${monitor.body.error}`).toBe('400 invalid_request');
    expect(monitor.body.error_description).toContain('university-wide');
  });
});

describe('look-up budget', () => {
  test('an operator who looks up more accounts than a counter ever would is slowed down (429 with Retry-After), others are not', async () => {
    const greedy = await akamon.deps.operators.create({ name: 'greedy', role: 'helpdesk', scope: null, expiresAt: null, createdBy: null });
    const target = targets.admin.mine;
    // The budget refills one a second while the loop runs, so the refusal comes a few look-ups past the burst.
    let answered = 0;
    let response: Response;
    for (;;) {
      response = await fetch(`${akamon.url}/admin/api/accounts/${target}`, { headers: { authorization: `Bearer ${greedy}` } });
      if (response.status !== 200 || answered > OPERATOR_LOOKUPS.burst + 100) break;
      await response.arrayBuffer();
      answered++;
    }
    expect(answered).toBeGreaterThanOrEqual(OPERATOR_LOOKUPS.burst);
    expect(response.status).toBe(429);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await response.json()) as { error: string }).error).toBe('rate_limited');
    // The budget is the operator's own: another operator's look-up goes through.
    expect((await call(tokens.helpdesk, { method: 'GET', path: `/accounts/${targets.helpdesk.mine}` })).status).toBe(200);
  }, 60_000);
});

describe('look-up budget of lists', () => {
  test('a list counts one look-up per OPERATOR_LOOKUP_ROWS rows it answers, so paging cannot copy the directory faster than looking up', async () => {
    for (let i = 0; i < 30; i++) await account('law');
    const principal = { actor: 'operator:lister', role: 'helpdesk' as const, scope: { departments: ['law'], affiliations: [] } };
    const rows = (await akamon.deps.helpDesk.search(principal, { limit: 1000 })).length;
    expect(rows).toBeGreaterThanOrEqual(30);
    let lists = 1;
    for (; lists < OPERATOR_LOOKUPS.burst; lists++) {
      const refused = await akamon.deps.helpDesk.search(principal, { limit: 1000 }).then(
        () => false,
        (error: { code?: string }) => error.code === 'rate_limited',
      );
      if (refused) break;
    }
    // Each list of 30+ rows costs at least 3: the budget of 300 ends near 100 lists (a few more refill meanwhile).
    expect(lists).toBeLessThan(OPERATOR_LOOKUPS.burst / Math.ceil(rows / OPERATOR_LOOKUP_ROWS) + 20);
  }, 60_000);
});

describe('akamon operator (the CLI over the same API)', () => {
  test('grants a console role with a scope, makes a scoped API token shown once, lists and revokes them; bad input is one line and a non-zero exit', async () => {
    const admin = { url: akamon.url, token: akamon.operatorToken };
    const person = await account('eng/mech', 'staff');
    const granted = await runCli(admin, ['operator', 'grant', person, '--role', 'office', '--department', 'eng', '--json']);
    expect(granted.code).toBe(0);
    expect(JSON.parse(granted.stdout)).toMatchObject({ commonId: person, role: 'office', scope: { departments: ['eng'], affiliations: [] } });
    const listed = await runCli(admin, ['operator', 'list']);
    expect(listed.stdout).toMatch(new RegExp(`${person}\\s.*office\\s+eng`));

    const made = await runCli(admin, ['operator', 'token-create', '--name', 'nightly sync', '--role', 'helpdesk', '--department', 'eng', '--days', '30']);
    expect(made.code).toBe(0);
    const secret = made.stdout.split('\n')[0]!;
    expect(secret).toMatch(/^akop_[A-Za-z0-9_-]{43}$/);
    // The token works within its scope, and its role is what it says.
    const mine = await runCli({ url: akamon.url, token: secret }, ['account', 'show', targets.helpdesk.mine, '--json']);
    expect(mine.code).toBe(0);
    const refused = await runCli({ url: akamon.url, token: secret }, ['account', 'suspend', targets.helpdesk.mine]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/helpdesk role may not/);
    const tokensJson = JSON.parse((await runCli(admin, ['operator', 'token-list', '--json'])).stdout) as Array<{ id: number; name: string }>;
    const id = tokensJson.find((t) => t.name === 'nightly sync')!.id;
    expect((await runCli(admin, ['operator', 'token-revoke', String(id)])).code).toBe(0);
    expect((await runCli({ url: akamon.url, token: secret }, ['account', 'show', targets.helpdesk.mine])).code).not.toBe(0);

    for (const args of [
      ['operator', 'grant', person, '--role', 'root'],
      // Machine roles are for API tokens only.
      ['operator', 'grant', person, '--role', 'provisioning'],
      // A writing role with no scope must say the whole university on purpose.
      ['operator', 'grant', person, '--role', 'office'],
      ['operator', 'grant', '12345', '--role', 'office'],
      ['operator', 'token-create', '--name', 'x', '--role', 'admin', '--days', 'forever'],
      ['operator', 'token-revoke', 'abc'],
    ]) {
      const r = await runCli(admin, args);
      expect(`${args.join(' ')} -> ${r.code === 0 ? 0 : 'non-zero'}`).toBe(`${args.join(' ')} -> non-zero`);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect((await runCli(admin, ['operator', 'withdraw', person])).code).toBe(0);
    expect(await akamon.deps.operators.personPrincipal((await akamon.deps.accountService.get(person)).id, person)).toBeUndefined();
  }, 90_000);
});
