import { describe, test, expect } from '@jest/globals';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliServer, commonIdsOfRun, expectOneErrorLine, lines } from '../support/cli-server.ts';
import { freePort, runCli, runScript, type ScriptResult } from '../support/processes.ts';

// The akamon CLI against a real server: both run as child processes, as an operator runs them.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const cid = commonIdsOfRun();
const setup = cliServer('akamon-cli-work-');
const { cli, json } = setup;

describe('akamon CLI', () => {
  test('--help lists every command and exits 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const command of ['account create', 'account import', 'account reissue-password', 'client update', 'keys rotate', 'signins', 'migrate']) {
      expect(r.stdout).toContain(command);
    }
    const sub = await cli(['account', 'create', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('--affiliation');
    const group = await cli(['client', '--help']);
    expect(group.code).toBe(0);
    expect(group.stdout).toContain('update');
  });

  test('the server started in production without an issuer exits 2 with one line, before opening anything', async () => {
    // The Docker image build relies on this: it starts the server so to fill Node's compile cache.
    const r = await runScript('src/main.ts', [], { AKAMON_ENV: 'production', AKAMON_DATA_DIR: setup.dataDir });
    expect(r.code).toBe(2);
    expectOneErrorLine(r, /AKAMON_ISSUER/);
    expect(r.stdout).toBe('');
  });

  test('an unknown command exits 2 with one line', async () => {
    const r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
    expectOneErrorLine(r, /frobnicate.*\(see akamon --help\)/);
    const sub = await cli(['account', 'frobnicate']);
    expect(sub.code).toBe(2);
    expectOneErrorLine(sub, /see akamon account --help/);
  });

  test('with --json a failure is one JSON object on stderr in the admin API form, stdout stays empty and the exit status is kept', async () => {
    const jsonError = (r: ScriptResult) => {
      expect(r.stdout).toBe('');
      const errs = lines(r.stderr);
      expect(errs).toHaveLength(1);
      return JSON.parse(errs[0]!) as { error: string; error_description: string };
    };
    // Refused by the server: its own code.
    const refused = await cli(['account', 'show', '9999999997', '--json']);
    expect(refused.code).toBe(1);
    expect(jsonError(refused)).toEqual({ error: 'account_not_found', error_description: expect.stringMatching(/9999999997/) });
    // A usage error: exit 2, and the help hint kept in the description.
    const usage = await cli(['account', 'revoke', '0000000001', '--on', 'someday', '--json']);
    expect(usage.code).toBe(2);
    expect(jsonError(usage)).toEqual({ error: 'usage_error', error_description: expect.stringMatching(/--on must be a date.*\(see akamon account revoke --help\)/) });
    const unknown = await cli(['account', 'frobnicate', '--json']);
    expect(unknown.code).toBe(2);
    expect(jsonError(unknown).error).toBe('usage_error');
    // A failure before any request (no server there): still JSON.
    const unreachable = await runCli({ url: `http://127.0.0.1:${await freePort()}`, token: 'x' }, ['account', 'list', '--json']);
    expect(unreachable.code).toBe(1);
    expect(jsonError(unreachable)).toEqual({ error: 'failed', error_description: expect.stringMatching(/cannot reach the Akamon server/) });
    // Without --json the same failure stays one line of text.
    expectOneErrorLine(await cli(['account', 'show', '9999999997']), /^akamon: /);
  });

  test('account create prints exactly the Common ID and a 16-character initial password', async () => {
    const r = await cli(['account', 'create', '--id', cid(1), '--name', 'Hanako Todai', '--affiliation', 'student', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out).sort()).toEqual(['commonId', 'initialPassword']);
    expect(out.commonId).toBe(cid(1));
    expect(out.initialPassword).toHaveLength(16);
    const shown = await json(['account', 'show', cid(1)]);
    expect(shown).toMatchObject({ commonId: cid(1), name: 'Hanako Todai', affiliation: 'student', status: 'active', mustChangePassword: true });
  });

  test('a duplicate Common ID is refused by the server: exit 1, one line', async () => {
    const r = await cli(['account', 'create', '--id', cid(1), '--name', 'Someone Else', '--affiliation', 'staff']);
    expect(r.code).toBe(1);
    expectOneErrorLine(r, /already exists/);
    expect(r.stdout).toBe('');
  });

  test('bad or missing arguments exit 2 with one line', async () => {
    const badId = await cli(['account', 'create', '--id', '12345', '--name', 'X', '--affiliation', 'student']);
    expect(badId.code).toBe(2);
    expectOneErrorLine(badId, /10 digits.*\(see akamon account create --help\)$/);
    const noName = await cli(['account', 'create', '--id', cid(2), '--affiliation', 'student']);
    expect(noName.code).toBe(2);
    expectOneErrorLine(noName, /--name/);
    const badOption = await cli(['account', 'list', '--colour']);
    expect(badOption.code).toBe(2);
    expectOneErrorLine(badOption, /unknown option --colour/);
    const badLimit = await cli(['signins', '--limit', 'many']);
    expect(badLimit.code).toBe(2);
    expectOneErrorLine(badLimit);
    // Nothing was created by the refused commands.
    expect((await cli(['account', 'show', cid(2)])).code).toBe(1);
  });

  test('account status changes and password reissue', async () => {
    expect((await json(['account', 'suspend', cid(1)])).status).toBe('suspended');
    expect((await json(['account', 'activate', cid(1)])).status).toBe('active');
    expect((await cli(['account', 'unlock', cid(1)])).code).toBe(0);
    const reissued = await json(['account', 'reissue-password', cid(1), '--checked', 'student ID card', '--by', 'Sato']);
    expect(Object.keys(reissued).sort()).toEqual(['commonId', 'initialPassword']);
    expect(reissued.initialPassword).toHaveLength(16);
    const missing = await cli(['account', 'reissue-password', '9999999999']);
    expect(missing.code).toBe(1);
    expectOneErrorLine(missing, /no account/);
  });

  test('client create, update, show and delete', async () => {
    const confidential = await json(['client', 'create', '--name', 'VPN', '--redirect-uri', 'https://vpn.example.ac.jp/cb']);
    expect(Object.keys(confidential).sort()).toEqual(['clientId', 'clientSecret']);
    expect(typeof confidential.clientId).toBe('string');
    expect(typeof confidential.clientSecret).toBe('string');
    expect(confidential.clientSecret.length).toBeGreaterThanOrEqual(32);

    const pub = await json(['client', 'create', '--name', 'Mobile', '--redirect-uri', 'http://localhost:8080/cb', '--public']);
    expect(Object.keys(pub).sort()).toEqual(['clientId', 'clientSecret']);
    expect(pub.clientSecret).toBeNull();

    const id = confidential.clientId;
    const updated = await cli(['client', 'update', id, '--pairwise', '--max-password-length', '32', '--redirect-uri', 'https://vpn.example.ac.jp/cb2']);
    expect(updated.code).toBe(0);
    expect(updated.stdout).not.toContain(confidential.clientSecret);
    const shown = await json(['client', 'show', id]);
    expect(shown).toMatchObject({ clientId: id, name: 'VPN', pairwise: true, maxPasswordLength: 32, public: false, redirectUris: ['https://vpn.example.ac.jp/cb2'] });
    expect(JSON.stringify(shown)).not.toContain(confidential.clientSecret);

    const cleared = await json(['client', 'update', id, '--no-max-password-length', '--no-pairwise']);
    expect(cleared.clientSecret).toBeNull();
    expect(cleared.client).toMatchObject({ pairwise: false, maxPasswordLength: null });
    const rotated = await json(['client', 'update', id, '--rotate-secret']);
    expect(typeof rotated.clientSecret).toBe('string');
    expect(rotated.clientSecret).not.toBe(confidential.clientSecret);

    const nothing = await cli(['client', 'update', id]);
    expect(nothing.code).toBe(2);
    expectOneErrorLine(nothing);

    const list = await json<Array<{ clientId: string }>>(['client', 'list']);
    expect(list.map((c) => c.clientId)).toEqual(expect.arrayContaining([id, pub.clientId]));

    expect((await cli(['client', 'delete', id])).code).toBe(0);
    const gone = await cli(['client', 'show', id]);
    expect(gone.code).toBe(1);
    expectOneErrorLine(gone, /no client/);
  });

  test('MFA settings: account update, reset-mfa, and client --require-mfa / --mfa-max-age', async () => {
    expect((await json(['account', 'update', cid(1), '--require-mfa'])).mfaRequired).toBe(true);
    expect(await json(['account', 'show', cid(1)])).toMatchObject({ mfaRequired: true, factors: [] });
    const human = await cli(['account', 'show', cid(1)]);
    expect(human.stdout).toMatch(/MFA required:\s+yes/);
    const nothing = await cli(['account', 'update', cid(1)]);
    expect(nothing.code).toBe(2);
    expectOneErrorLine(nothing, /--require-mfa/);
    expect((await json(['account', 'update', cid(1), '--no-require-mfa'])).mfaRequired).toBe(false);
    expect((await cli(['account', 'reset-mfa', cid(1)])).code).toBe(0);

    const created = await json(['client', 'create', '--name', 'Slack', '--redirect-uri', 'https://slack.example.ac.jp/cb', '--require-mfa', '--mfa-max-age', '600']);
    expect(await json(['client', 'show', created.clientId])).toMatchObject({ requireMfa: true, mfaMaxAge: 600 });
    const relaxed = await json(['client', 'update', created.clientId, '--no-require-mfa', '--no-mfa-max-age']);
    expect(relaxed.client).toMatchObject({ requireMfa: false, mfaMaxAge: null });
    const tooShort = await cli(['client', 'update', created.clientId, '--mfa-max-age', '5']);
    expect(tooShort.code).toBe(2);
    expectOneErrorLine(tooShort, /--mfa-max-age/);
  });

  test('token import, list, assign and unassign', async () => {
    const file = path.join(setup.work, 'tokens.csv');
    const serial = `CLI${Date.now()}`;
    await fs.writeFile(
      file,
      ['serial,secret,digits,period', `${serial}A,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,6,30`, `${serial}B,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,8,60`, `${serial}C,not base32,6,30`].join('\n'),
    );
    const imported = await cli(['token', 'import', file, '--json']);
    expect(imported.code).toBe(1);
    const result = JSON.parse(imported.stdout);
    expect(result.loaded).toEqual([`${serial}A`, `${serial}B`]);
    expect(result.errors).toEqual([expect.objectContaining({ row: 4, serial: `${serial}C` })]);
    expect(lines(imported.stderr).filter((l) => l.startsWith('row 4: '))).toHaveLength(1);
    expect(imported.stdout).not.toContain('JBSWY3DP');

    const assigned = await json(['token', 'assign', `${serial}A`, '--to', cid(1)]);
    expect(assigned).toEqual({ serial: `${serial}A`, assignedTo: cid(1) });
    const again = await cli(['token', 'assign', `${serial}A`, '--to', cid(1)]);
    expect(again.code).toBe(1);
    expectOneErrorLine(again, /already lent/);
    const listed = await json<Array<{ serial: string; assignedTo: string | null }>>(['token', 'list']);
    expect(listed.find((t) => t.serial === `${serial}A`)?.assignedTo).toBe(cid(1));
    expect(JSON.stringify(listed)).not.toContain('JBSWY3DP');
    expect((await json(['account', 'show', cid(1)])).factors).toEqual([expect.objectContaining({ kind: 'token', label: `Token ${serial}A` })]);
    expect((await cli(['token', 'unassign', `${serial}A`])).code).toBe(0);
    expect((await json(['account', 'show', cid(1)])).factors).toEqual([]);
    // Every change is in the audit record, with the operator who made it.
    const events = await json<Array<{ actor: string; action: string; commonId: string | null; details: Record<string, unknown> }>>(['audit', '--account', cid(1)]);
    expect(events.slice(0, 2).map((e) => e.action)).toEqual(['token.returned', 'token.lent']);
    expect(events[0]).toMatchObject({ actor: 'operator:initial', commonId: cid(1), details: { serial: `${serial}A` } });
    expect(events.map((e) => e.action)).toEqual(expect.arrayContaining(['account.created', 'password.reissued', 'mfa.reset']));
    expect(events.find((e) => e.action === 'password.reissued')?.details).toEqual({ checked: 'student ID card', by: 'Sato' });
    const missingTo = await cli(['token', 'assign', `${serial}B`]);
    expect(missingTo.code).toBe(2);
    expectOneErrorLine(missingTo, /--to/);
  });

  test('access rules and education results', async () => {
    const created = await json(['client', 'create', '--name', 'Wi-Fi menu', '--redirect-uri', 'https://wifi.example.ac.jp/cb', '--allow-affiliation', 'student,faculty', '--require-education']);
    const id = created.clientId;
    expect(await json(['client', 'show', id])).toMatchObject({ allowedAffiliations: ['student', 'faculty'], allowedStatuses: ['active'], requireEducation: true });
    expect((await cli(['client', 'update', id, '--allow-account', cid(1), '--deny-account', cid(11)])).code).toBe(0);
    expect((await json(['client', 'show', id])).accountRules).toEqual(
      expect.arrayContaining([
        { commonId: cid(1), effect: 'allow' },
        { commonId: cid(11), effect: 'deny' },
      ]),
    );
    expect((await cli(['client', 'update', id, '--unlist-account', cid(11), '--allow-affiliation', 'any', '--no-require-education'])).code).toBe(0);
    expect(await json(['client', 'show', id])).toMatchObject({ allowedAffiliations: null, requireEducation: false, accountRules: [{ commonId: cid(1), effect: 'allow' }] });
    const badAffiliation = await cli(['client', 'update', id, '--allow-affiliation', 'wizard']);
    expect(badAffiliation.code).toBe(1);
    expectOneErrorLine(badAffiliation, /affiliation/);
    const badListed = await cli(['client', 'update', id, '--deny-account', '12']);
    expect(badListed.code).toBe(2);

    const year = new Date().getUTCFullYear() - (new Date().getUTCMonth() < 3 ? 1 : 0);
    for (const n of [31, 32]) expect((await cli(['account', 'create', '--id', cid(n), '--name', `Learner ${n}`, '--affiliation', 'student'])).code).toBe(0);
    const recorded = await json(['education', 'record', cid(31), '--year', String(year), '--passed-on', `${year}-06-01`]);
    expect(recorded).toEqual({ commonId: cid(31), year, passedOn: `${year}-06-01` });
    const file = path.join(setup.work, 'education.csv');
    await fs.writeFile(file, ['common_id,year,passed_on', `${cid(31)},${year},${year}-07-01`, `${cid(32)},${year},`, `${cid(31)},${year},${year}-02-30`, '99,2026,'].join('\n'));
    const imported = await cli(['education', 'import', file, '--json']);
    expect(imported.code).toBe(1);
    const out = JSON.parse(imported.stdout);
    expect(out.recorded.map((r: { commonId: string }) => r.commonId)).toEqual([cid(31), cid(32)]);
    expect(out.errors.map((e: { row: number }) => e.row)).toEqual([4, 5]);
    expect(lines(imported.stderr).filter((l) => l.startsWith('row '))).toHaveLength(2);
    const missingYear = await cli(['education', 'record', cid(31)]);
    expect(missingYear.code).toBe(2);
  });

  test('revocation: now, on a date, cancelled, a cohort from CSV, and the list of those due', async () => {
    for (const n of [41, 42, 43, 44]) expect((await cli(['account', 'create', '--id', cid(n), '--name', `Graduate ${n}`, '--affiliation', 'student'])).code).toBe(0);
    const later = `${new Date().getUTCFullYear() + 1}-03-31`;
    const scheduled = await json(['account', 'revoke', cid(41), '--on', later, '--reason', 'graduation']);
    expect(scheduled).toMatchObject({ status: 'active', revokeReason: 'graduation' });
    // --json: ISO 8601 with the university's offset; people read the day the operator typed (issue 14 point 7).
    expect(scheduled.revokeAt).toBe(`${later}T00:00:00+09:00`);
    const day = `31 Mar ${later.slice(0, 4)}`;
    const again = await cli(['account', 'revoke', cid(41), '--on', later, '--reason', 'graduation'], { LANG: 'en_GB.UTF-8', LC_ALL: '', LC_MESSAGES: '' });
    expect(again.stdout).toContain(`will be revoked on ${day} (graduation)`);
    const shown = await cli(['account', 'show', cid(41)], { LANG: 'en_GB.UTF-8', LC_ALL: '', LC_MESSAGES: '' });
    expect(shown.stdout).toMatch(new RegExp(`Revocation scheduled:\\s+${day} \\(graduation\\)`));
    expect(shown.stdout).toMatch(/Created:\s+\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}\n/);
    const japanese = await cli(['account', 'show', cid(41)], { LANG: 'ja_JP.UTF-8', LC_ALL: '', LC_MESSAGES: '' });
    expect(japanese.stdout).toMatch(new RegExp(`Revocation scheduled:\\s+${later.slice(0, 4)}年3月31日 \\(graduation\\)`));
    expect(shown.stdout).toMatch(/ID card linked:\s+no/);
    expect((await json(['account', 'revoke', cid(41), '--cancel'])).revokeAt).toBeNull();
    const notScheduled = await cli(['account', 'revoke', cid(41), '--cancel']);
    expect(notScheduled.code).toBe(1);
    expectOneErrorLine(notScheduled, /no scheduled revocation/);
    expect((await cli(['account', 'revoke', cid(41), '--cancel', '--on', later])).code).toBe(2);
    expect((await cli(['account', 'revoke', cid(41), '--on', 'someday'])).code).toBe(2);

    const file = path.join(setup.work, 'cohort.csv');
    await fs.writeFile(
      file,
      ['common_id,revoke_on,reason', `${cid(42)},${later},graduation`, `${cid(43)},${later},`, `${cid(44)},,graduation`, `${cid(42)}0,${later},graduation`, `9999999998,${later},graduation`].join(
        '\n',
      ),
    );
    const imported = await cli(['account', 'revoke-import', file, '--json']);
    expect(imported.code).toBe(1);
    const out = JSON.parse(imported.stdout);
    expect(out.scheduled.map((a: { commonId: string }) => a.commonId)).toEqual([cid(42), cid(43)]);
    expect(out.errors.map((e: { row: number }) => e.row)).toEqual([4, 5, 6]);
    expect(lines(imported.stderr)).toContain('scheduled 2/5');
    const due = await json(['account', 'revocations', '--until', later]);
    expect(due.map((a: { commonId: string }) => a.commonId)).toEqual(expect.arrayContaining([cid(42), cid(43)]));
    expect(due.map((a: { commonId: string }) => a.commonId)).not.toContain(cid(41));
    const table = await cli(['account', 'revocations'], { LANG: 'en_GB.UTF-8', LC_ALL: '', LC_MESSAGES: '' });
    expect(table.stdout).toMatch(new RegExp(`31 Mar ${later.slice(0, 4)}\\s+${cid(42)}\\s+active\\s+graduation`));
    expect(table.stdout).not.toMatch(/T\d{2}:\d{2}/);

    expect((await json(['account', 'revoke', cid(44), '--reason', 'resignation'])).status).toBe('revoked');
    const noLink = await cli(['account', 'unlink-idv', cid(44)]);
    expect(noLink.code).toBe(1);
    expectOneErrorLine(noLink, /no identity link/);
  });

  test('keys rotate answers two key IDs', async () => {
    const result = await json<{ kids: string[] }>(['keys', 'rotate']);
    expect(result.kids).toHaveLength(2);
    expect(new Set(result.kids).size).toBe(2);
  });

  test('account import creates the good rows and reports the bad ones', async () => {
    const file = path.join(setup.work, 'accounts.csv');
    await fs.writeFile(
      file,
      [
        'common_id,name,affiliation,email',
        `${cid(11)},Alice Aoki,student,alice@example.ac.jp`,
        `${cid(12)},"Bob, Jr.",faculty,`,
        '12345,Too Short,student,',
        `${cid(13)},Carol Chiba,staff,`,
        `${cid(14)},Dan Doi,wizard,`,
      ].join('\n'),
    );
    const letters = path.join(setup.work, 'letters');
    const r = await cli(['account', 'import', file, '--letters', letters]);
    expect(r.code).toBe(1);
    const csv = lines(r.stdout);
    expect(csv[0]).toBe('common_id,initial_password');
    expect(csv.slice(1).map((l) => l.split(',')[0])).toEqual([cid(11), cid(12), cid(13)]);
    for (const line of csv.slice(1)) expect(line.split(',')[1]).toHaveLength(16);
    const rowErrors = lines(r.stderr).filter((l) => l.startsWith('row '));
    expect(rowErrors).toHaveLength(2);
    expect(rowErrors[0]).toMatch(/^row 4: .*10 digits/);
    expect(rowErrors[1]).toMatch(/^row 6: .*affiliation/);
    expect(r.stderr).toContain('imported 3/5');
    expect((await fs.readdir(letters)).sort()).toEqual([cid(11), cid(12), cid(13)].map((id) => `${id}.html`));

    const listed = await json<Array<{ commonId: string; name: string }>>(['account', 'list', '--limit', '1000']);
    const ids = listed.map((a) => a.commonId);
    expect(ids).toEqual(expect.arrayContaining([cid(11), cid(12), cid(13)]));
    expect(ids).not.toContain(cid(14));
    expect(listed.find((a) => a.commonId === cid(12))?.name).toBe('Bob, Jr.');

    // Again with --json: every row now fails (exists or invalid), nothing is created.
    const again = await cli(['account', 'import', file, '--json']);
    expect(again.code).toBe(1);
    const out = JSON.parse(again.stdout);
    expect(out.created).toEqual([]);
    expect(out.errors.map((e: { row: number }) => e.row).sort()).toEqual([2, 3, 4, 5, 6]);
  });

  test('account import rejects a file without the required columns (exit 2)', async () => {
    const file = path.join(setup.work, 'wrong.csv');
    await fs.writeFile(file, 'id,name\n0000000001,X\n');
    const r = await cli(['account', 'import', file]);
    expect(r.code).toBe(2);
    expectOneErrorLine(r);
  });

  test('signins --json is an array', async () => {
    const all = await json(['signins']);
    expect(Array.isArray(all)).toBe(true);
    const some = await json(['signins', '--account', cid(1), '--since', '2020-01-01', '--limit', '5']);
    expect(Array.isArray(some)).toBe(true);
  });

  test('--letter writes a private letter with the name and the password, never over an existing file', async () => {
    const file = path.join(setup.work, 'letter.html');
    const created = await json(['account', 'create', '--id', cid(21), '--name', 'Letter Person', '--affiliation', 'guest', '--letter', file]);
    const stat = await fs.stat(file);
    expect(stat.mode & 0o777).toBe(0o600);
    const html = await fs.readFile(file, 'utf8');
    const text = html
      .replace(/<[^>]*>/g, '')
      .replace(/&amp;/g, '&')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'");
    expect(text).toContain('Letter Person');
    expect(text).toContain(created.initialPassword);
    expect(text).toContain(`${setup.url}/account`);
    // Dated in the university's time zone, in each language's own form.
    const today = new Date();
    const tokyo = new Intl.DateTimeFormat('en-US', { timeZone: 'Asia/Tokyo', year: 'numeric', month: 'numeric', day: 'numeric' }).formatToParts(today);
    const part = (type: string) => tokyo.find((p) => p.type === type)!.value;
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    expect(text).toContain(`発行日: ${part('year')}年${part('month')}月${part('day')}日`);
    expect(text).toContain(`Issued on ${part('day')} ${months[Number(part('month')) - 1]} ${part('year')}`);

    const again = await cli(['account', 'create', '--id', cid(22), '--name', 'Other', '--affiliation', 'guest', '--letter', file]);
    expect(again.code).toBe(1);
    expectOneErrorLine(again, /exists/);
    expect(await fs.readFile(file, 'utf8')).toBe(html);
    // The file was checked before the account was created.
    expect((await cli(['account', 'show', cid(22)])).code).toBe(1);
  });

  test('a wrong operator token exits 1 with one line', async () => {
    const r = await cli(['account', 'list'], { AKAMON_OPERATOR_TOKEN: `akop_${'x'.repeat(43)}` });
    expect(r.code).toBe(1);
    expectOneErrorLine(r, /operator token/);
    const flag = await cli(['keys', 'rotate', '--token', 'nonsense']);
    expect(flag.code).toBe(1);
    expectOneErrorLine(flag);
  });

  // Found by a probe of the operator surfaces: fetch refused the header and its message, printed
  // as it was, held the whole "Bearer ..." line and with it the token.
  test('a token that is not printable ASCII is refused before any request, in one line that never repeats it', async () => {
    const secret = 'akop_probe-SECRET-value';
    for (const [token, source] of [
      [`${secret}\nsecond-line`, 'AKAMON_OPERATOR_TOKEN'],
      [`${secret}\u00e9`, 'AKAMON_OPERATOR_TOKEN'],
    ]) {
      const r = await cli(['client', 'list'], { AKAMON_OPERATOR_TOKEN: token! });
      expect(r.code).toBe(1);
      expectOneErrorLine(r, new RegExp(`the operator token from ${source} holds characters other than printable ASCII`));
      expect(r.stderr + r.stdout).not.toContain('SECRET');
    }
    const flag = await cli(['client', 'list', '--token', `${secret}\u0007`, '--json']);
    expect(flag.code).toBe(1);
    expect(JSON.parse(flag.stderr)).toEqual({ error: 'failed', error_description: expect.stringMatching(/^the operator token from --token holds/) });
    expect(flag.stderr).not.toContain('SECRET');
  });

  test('migrate applies the migrations to a new embedded database once, and refuses while a server holds one', async () => {
    const fresh = await fs.mkdtemp(path.join(os.tmpdir(), 'akamon-cli-migrate-'));
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const first = await cli(['migrate', '--json'], { AKAMON_DATA_DIR: fresh, AKAMON_URL: nobody });
    expect(first.code).toBe(0);
    const all = (await fs.readdir(path.join(ROOT, 'migrations'))).map((f) => f.replace(/\.ts$/, '')).sort();
    expect(JSON.parse(first.stdout).applied).toEqual(all);
    const second = await cli(['migrate'], { AKAMON_DATA_DIR: fresh, AKAMON_URL: nobody });
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('already up to date');
    if (!process.env.TEST_DATABASE_URL) {
      const busy = await cli(['migrate']);
      expect(busy.code).toBe(1);
      expectOneErrorLine(busy, /a server is running/);
    }
    await fs.rm(fresh, { recursive: true, force: true });
  }, 60_000);

  test('an unreachable server exits 1 with one line pointing to npm start', async () => {
    const r = await cli(['account', 'list'], { AKAMON_URL: `http://127.0.0.1:${await freePort()}` });
    expect(r.code).toBe(1);
    expectOneErrorLine(r, /npm start/);
  });
});
