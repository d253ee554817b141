import { describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliServer, commonIdsOfRun, lines } from '../support/cli-server.ts';

// The CLI's imports against a real server (both child processes): every problem of a row, on stderr
// and in --json, and the progress line rewritten in place on a terminal (a pseudo-terminal from script(1)).

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const cid = commonIdsOfRun();
const setup = cliServer('akamon-import-cli-');
const { cli } = setup;

async function file(name: string, rows: string[]): Promise<string> {
  const target = path.join(setup.work, name);
  await fs.writeFile(target, rows.join('\n'));
  return target;
}

describe('akamon account import', () => {
  test('a bad row is reported with every problem, on one line, and in --json as a list', async () => {
    const csv = await file('accounts.csv', [
      'common_id,name,affiliation,email,email_verified,family_name_kana',
      `${cid(1)},Aoi Abe,student,,,アベ`,
      `123,,wizard,nope,perhaps,abe`,
      `${cid(1)},Aoi Again,student,,,`,
    ]);
    const r = await cli(['account', 'import', csv]);
    expect(r.code).toBe(1);
    const rowErrors = lines(r.stderr).filter((l) => l.startsWith('row '));
    expect(rowErrors).toEqual([
      'row 3: email_verified must be true or false, got "perhaps"; the Common ID must be exactly 10 digits; the name must be 1 to 200 characters on one line, without control or bidirectional formatting characters; the affiliation must be one of student, faculty, staff, alumni, guest; the email address is not valid; the reading of the family name must be katakana (or hiragana), 1 to 100 characters',
      `row 4: Common ID ${cid(1)} is also on row 2`,
    ]);
    // Not a terminal: the periodic lines, as before.
    expect(lines(r.stderr)).toContain('imported 1/3');
    expect(r.stderr).not.toContain('\r');

    const again = await cli(['account', 'import', csv, '--json']);
    const out = JSON.parse(again.stdout);
    expect(out.created).toEqual([]);
    expect(out.errors.map((e: { row: number }) => e.row)).toEqual([2, 3, 4]);
    expect(out.errors[0].problems).toEqual([{ code: 'account_exists', message: `an account with Common ID ${cid(1)} already exists` }]);
    expect(out.errors[1].problems.map((p: { field: string; code: string }) => [p.field, p.code])).toEqual([
      ['email_verified', 'invalid_request'],
      ['common_id', 'invalid_common_id'],
      ['name', 'invalid_name'],
      ['affiliation', 'invalid_affiliation'],
      ['email', 'invalid_email'],
      ['family_name_kana', 'invalid_reading'],
    ]);
    expect(out.errors[1].error).toBe(out.errors[1].problems.map((p: { message: string }) => p.message).join('; '));
  });

  test('on a terminal the progress is one line rewritten in place, with the errors counted', async () => {
    const csv = await file('tty.csv', ['common_id,name,affiliation', `${cid(11)},Ken Kato,staff`, 'x,Bad Row,student', `${cid(12)},Mai Mori,staff`]);
    // script(1) gives the CLI a pseudo-terminal; its stdout and stderr both come out of it.
    const command = [path.join(ROOT, 'node_modules/.bin/node'), 'src/cli/main.ts', 'account', 'import', csv].map((a) => `'${a}'`).join(' ');
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        'script',
        ['-q', '-e', '-c', command, '/dev/null'],
        { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm', AKAMON_URL: setup.url, AKAMON_DATA_DIR: setup.dataDir } },
        (error, stdout) => (error && error.code !== 1 ? reject(error) : resolve(stdout)),
      );
    });
    expect(output).toContain('row 3: the Common ID must be exactly 10 digits');
    expect(output).toMatch(/\rimported 2\/3, 1 error\x1b\[K/);
    expect(output).not.toMatch(/^imported 2\/3$/m);
  });
});

describe('akamon account revoke-import', () => {
  test('every problem of a row, and the good rows scheduled', async () => {
    const created = await cli(['account', 'create', '--id', cid(21), '--name', 'Rin Ueda', '--affiliation', 'student', '--json']);
    expect(created.code).toBe(0);
    const csv = await file('cohort.csv', ['common_id,revoke_on,reason', `${cid(21)},2099-03-31,graduation`, 'abc,someday,no!', `${cid(22)},,`, `${cid(21)},2099-03-31,`]);
    const r = await cli(['account', 'revoke-import', csv, '--json']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.scheduled.map((a: { commonId: string }) => a.commonId)).toEqual([cid(21)]);
    expect(out.errors.map((e: { row: number; problems: Array<{ field: string }> }) => [e.row, e.problems.map((p) => p.field)])).toEqual([
      [3, ['common_id', 'revoke_on', 'reason']],
      [4, ['revoke_on']],
      [5, ['common_id']],
    ]);
    expect(lines(r.stderr).filter((l) => l.startsWith('row 3: '))).toEqual([
      'row 3: the Common ID must be exactly 10 digits; revoke_on must be a date such as 2027-03-31, got "someday"; reason must be 1 to 100 letters, digits, spaces or ._:/- (such as graduation)',
    ]);
    expect(lines(r.stderr)).toContain('scheduled 1/4');
  });
});
