import { describe, expect, test } from '@jest/globals';
import fs from 'node:fs/promises';
import path from 'node:path';
import { cliServer, commonIdsOfRun, expectOneErrorLine, lines } from '../support/cli-server.ts';
import type { ScriptResult } from '../support/processes.ts';

// The account fields (names in parts, department, entitlements, email_verified) and the client's
// allowed departments through the akamon CLI against a real server, both child processes.

const cid = commonIdsOfRun();
const setup = cliServer('akamon-fields-cli-');
const { cli, json } = setup;

function expectUsage(r: ScriptResult, pattern: RegExp): void {
  expect(r.code).toBe(2);
  expectOneErrorLine(r, pattern);
}

describe('akamon account: names, department, entitlements', () => {
  test('create with the fields, show them, update and clear one', async () => {
    const created = await cli([
      'account',
      'create',
      '--id',
      cid(1),
      '--name',
      'YAMADA Hanako',
      '--affiliation',
      'faculty',
      '--family-name',
      'Yamada',
      '--given-name',
      'Hanako',
      '--family-name-ja',
      '山田',
      '--given-name-ja',
      '花子',
      '--family-name-kana',
      'やまだ',
      '--given-name-kana',
      'はなこ',
      '--department',
      'Eng/Mech',
      '--entitlements',
      'urn:mace:dir:entitlement:common-lib-terms https://example.ac.jp/ent/hpc',
      '--no-email-verified',
      '--email',
      'hanako@example.com',
    ]);
    expect(created.code).toBe(0);

    const shown = await cli(['account', 'show', cid(1)]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^Family name \(kana\):\s+ヤマダ$/m);
    expect(shown.stdout).toMatch(/^Given name \(ja\):\s+花子$/m);
    expect(shown.stdout).toMatch(/^Department:\s+eng\/mech$/m);
    expect(shown.stdout).toMatch(/^Email verified:\s+no$/m);
    expect(shown.stdout).toMatch(/^Entitlements:\s+urn:mace:dir:entitlement:common-lib-terms, https:\/\/example.ac.jp\/ent\/hpc$/m);

    const updated = await cli(['account', 'update', cid(1), '--department', 'sci', '--email-verified', '--given-name-kana', '']);
    expect(updated.code).toBe(0);
    expect(updated.stdout).toContain(`Account ${cid(1)} updated: emailVerified, givenNameKana, department.`);
    expect(await json(['account', 'show', cid(1)])).toMatchObject({ department: 'sci', emailVerified: true, givenNameKana: null, familyNameKana: 'ヤマダ' });

    expect((await cli(['account', 'update', cid(1), '--entitlements', ''])).code).toBe(0);
    expect((await json(['account', 'show', cid(1)])).entitlements).toEqual([]);
  });

  test('bad values and an update without a change are usage errors: exit 2, one line, nothing sent', async () => {
    expectUsage(await cli(['account', 'create', '--id', cid(2), '--name', 'X', '--affiliation', 'student', '--family-name-kana', '山田']), /katakana/);
    expectUsage(await cli(['account', 'create', '--id', cid(2), '--name', 'X', '--affiliation', 'student', '--department', 'eng mech']), /department/);
    expectUsage(await cli(['account', 'create', '--id', cid(2), '--name', 'X', '--affiliation', 'student', '--entitlements', 'library']), /absolute URI/);
    expect((await cli(['account', 'show', cid(2)])).code).toBe(1);
    expectUsage(await cli(['account', 'update', cid(1)]), /say what to change/);
    expectUsage(await cli(['account', 'update', cid(1), '--email-verified', '--no-email-verified']), /contradict/);
    expectUsage(await cli(['account', 'list', '--department', 'a b']), /department code/);
  });

  test('account update --help lists the field options', async () => {
    const help = await cli(['account', 'update', '--help']);
    expect(help.code).toBe(0);
    for (const option of ['--family-name-kana', '--department', '--entitlements', '--[no-]email-verified', '--require-mfa']) expect(help.stdout).toContain(option);
    // In the operator's language, as the client settings' help is.
    const ja = await cli(['account', 'update', '--help'], { LANG: 'ja_JP.UTF-8', LC_ALL: '', LC_MESSAGES: '' });
    expect(ja.stdout).toContain('ローマ字の姓');
    expect(help.stdout).toContain('family name in Latin script');
  });

  test('import reads the new columns; a bad cell refuses its row only; list filters by department', async () => {
    const file = path.join(setup.work, 'people.csv');
    await fs.writeFile(
      file,
      [
        'common_id,name,affiliation,email,email_verified,family_name,given_name,family_name_ja,given_name_ja,family_name_kana,given_name_kana,department,entitlements',
        `${cid(11)},Taro Sato,student,taro@example.com,false,Sato,Taro,佐藤,太郎,ｻﾄｳ,たろう,lit/jp,urn:mace:dir:entitlement:common-lib-terms`,
        `${cid(12)},Jiro Suzuki,staff,,,,,,,,,lit,`,
        `${cid(13)},Bad Kana,staff,,,,,,,Suzuki,,lit,`,
        `${cid(14)},Bad Flag,staff,,maybe,,,,,,,lit,`,
        `${cid(15)},Elsewhere,staff,,,,,,,,,med,`,
      ].join('\n'),
    );
    const r = await cli(['account', 'import', file]);
    expect(r.code).toBe(1);
    expect(
      lines(r.stdout)
        .slice(1)
        .map((l) => l.split(',')[0]),
    ).toEqual([cid(11), cid(12), cid(15)]);
    const rowErrors = lines(r.stderr).filter((l) => l.startsWith('row '));
    expect(rowErrors).toEqual([expect.stringMatching(/^row 4: .*katakana/), expect.stringMatching(/^row 5: email_verified must be true or false/)]);

    expect(await json(['account', 'show', cid(11)])).toMatchObject({
      emailVerified: false,
      familyName: 'Sato',
      familyNameJa: '佐藤',
      familyNameKana: 'サトウ',
      givenNameKana: 'タロウ',
      department: 'lit/jp',
      entitlements: ['urn:mace:dir:entitlement:common-lib-terms'],
    });
    expect(await json(['account', 'show', cid(12)])).toMatchObject({ emailVerified: true, familyName: null, department: 'lit', entitlements: [] });

    const literature = await json<Array<{ commonId: string }>>(['account', 'list', '--department', 'lit']);
    expect(literature.map((a) => a.commonId).sort()).toEqual([cid(11), cid(12)]);
    const table = await cli(['account', 'list', '--department', 'lit']);
    expect(lines(table.stdout)[0]).toMatch(/^COMMON ID\s+STATUS\s+AFFILIATION\s+DEPARTMENT\s+NAME$/);
    expect(table.stdout).toMatch(new RegExp(`${cid(11)}\\s+active\\s+student\\s+lit/jp\\s+Taro Sato`));
  });

  test('client --allow-department, shown by client show; "any" lifts it', async () => {
    const created = await json<{ clientId: string }>(['client', 'create', '--name', 'Lab Portal', '--redirect-uri', 'https://lab.example.ac.jp/cb', '--allow-department', 'eng,Sci/Phys']);
    const shown = await cli(['client', 'show', created.clientId]);
    expect(shown.stdout).toMatch(/^Allowed departments:\s+eng, sci\/phys$/m);
    await json(['client', 'update', created.clientId, '--allow-department', 'any']);
    expect((await json(['client', 'show', created.clientId])).allowedDepartments).toBeNull();
    const refused = await cli(['client', 'update', created.clientId, '--allow-department', 'eng//x']);
    expect(refused.code).not.toBe(0);
    expect(lines(refused.stderr)).toEqual([expect.stringMatching(/^akamon: .*department/)]);
  });
});
