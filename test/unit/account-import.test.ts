import { describe, expect, test } from '@jest/globals';
import { checkImportRows } from '../../src/account/account-import.ts';
import { validateAccountInput } from '../../src/account/account-input.ts';
import { ImportProgress } from '../../src/cli/csv-file.ts';
import { csvLine, parseCsvTable } from '../../src/shared/csv-table.ts';
import { DomainError } from '../../src/shared/errors.ts';

const row = (line: number, fields: Record<string, string>) => ({ line, fields });

describe('checking the rows of an account import', () => {
  test('a row with many faults reports every one, each with its column', () => {
    const [checked] = checkImportRows('accounts', [
      row(2, {
        common_id: '12345',
        name: '',
        affiliation: 'wizard',
        email: 'not-an-address',
        email_verified: 'maybe',
        family_name: '山田',
        given_name_kana: 'hanako',
        department: 'eng mech',
        entitlements: 'not a uri',
      }),
    ]);
    expect(checked!.value).toBeUndefined();
    expect(checked!.problems.map((p) => [p.field, p.code])).toEqual([
      ['email_verified', 'invalid_request'],
      ['common_id', 'invalid_common_id'],
      ['name', 'invalid_name'],
      ['affiliation', 'invalid_affiliation'],
      ['email', 'invalid_email'],
      ['family_name', 'invalid_name'],
      ['given_name_kana', 'invalid_reading'],
      ['department', 'invalid_department'],
      ['entitlements', 'invalid_entitlement'],
    ]);
  });

  test('a good row gives the input the create takes, and a Common ID met again is refused there', () => {
    const rows = checkImportRows('accounts', [
      row(2, { common_id: '0000000001', name: 'Hanako Yamada', affiliation: 'Student', department: 'ENG/Mech', email_verified: 'no' }),
      row(3, { common_id: '0000000002', name: 'Taro', affiliation: 'staff' }),
      row(4, { common_id: '0000000001', name: 'Hanako Again', affiliation: 'student' }),
    ]);
    expect(rows[0]!.problems).toEqual([]);
    expect(rows[0]!.value).toEqual({ commonId: '0000000001', name: 'Hanako Yamada', affiliation: 'Student', email: null, profile: { department: 'ENG/Mech', emailVerified: false } });
    expect(rows[1]!.value?.commonId).toBe('0000000002');
    expect(rows[2]!.value).toBeUndefined();
    expect(rows[2]!.problems).toEqual([{ code: 'duplicate_common_id', message: 'Common ID 0000000001 is also on row 2', field: 'common_id' }]);
  });
});

describe('checking the rows of a revocation import', () => {
  test('every fault of a row, and duplicates', () => {
    const rows = checkImportRows('revocations', [
      row(2, { common_id: 'x', revoke_on: 'someday', reason: 'no!' }),
      row(3, { common_id: '0000000003', revoke_on: '' }),
      row(4, { common_id: '0000000004', revoke_on: '2027-03-31', reason: 'graduation' }),
      row(5, { common_id: '0000000004', revoke_on: '2027-03-31', reason: '' }),
    ]);
    expect(rows[0]!.problems.map((p) => p.field)).toEqual(['common_id', 'revoke_on', 'reason']);
    expect(rows[1]!.problems.map((p) => p.message)).toEqual(['revoke_on is empty']);
    expect(rows[2]!.value).toEqual({ commonId: '0000000004', on: '2027-03-31', reason: 'graduation' });
    expect(rows[3]!.problems.map((p) => p.code)).toEqual(['duplicate_common_id']);
  });
});

describe('a single create', () => {
  test('is refused with the first problem (code and text as before), carrying them all', () => {
    let thrown: unknown;
    try {
      validateAccountInput({ commonId: '1', name: '', affiliation: 'student', profile: { familyName: '山田' } });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(DomainError);
    const error = thrown as DomainError;
    expect(error.code).toBe('invalid_common_id');
    expect(error.message).toBe('the Common ID must be exactly 10 digits');
    expect((error.details.problems as Array<{ code: string }>).map((p) => p.code)).toEqual(['invalid_common_id', 'invalid_name', 'invalid_name']);
  });
});

describe('reading an import file', () => {
  const columns = { required: ['common_id', 'name'], optional: ['email'] };
  const limits = { name: 'the file', maxBytes: 1000, maxRows: 2 };
  const bytes = (text: string) => new TextEncoder().encode(text);
  const codeOf = (input: Uint8Array) => {
    try {
      parseCsvTable(input, columns, limits);
    } catch (error) {
      return (error as DomainError).code;
    }
    return 'read';
  };

  test('takes a BOM and reports the line of each row', () => {
    const rows = parseCsvTable(bytes('\uFEFFCommon_ID,name\n0000000001,"A, B"\n\n0000000002,C\n'), columns, limits);
    expect(rows).toEqual([
      { line: 2, fields: { common_id: '0000000001', name: 'A, B' } },
      { line: 4, fields: { common_id: '0000000002', name: 'C' } },
    ]);
  });

  test('refuses what is not a UTF-8 CSV of these columns, before any row is looked at', () => {
    expect(codeOf(new Uint8Array([0x63, 0x6f, 0xff, 0x0a]))).toBe('csv_not_utf8');
    expect(codeOf(bytes('common_id,name,phone\n'))).toBe('csv_unknown_column');
    expect(codeOf(bytes('name\n'))).toBe('csv_missing_column');
    expect(codeOf(bytes('common_id,name,name\n'))).toBe('csv_duplicate_column');
    expect(codeOf(bytes(''))).toBe('csv_empty');
    expect(codeOf(bytes('common_id,name\n"1,2\n'))).toBe('csv_invalid');
    expect(codeOf(bytes('common_id,name\n1,a\n2,b\n3,c\n'))).toBe('csv_too_many_rows');
    expect(codeOf(bytes(`common_id,name\n${'1,a\n'.repeat(300)}`))).toBe('csv_too_large');
  });
});

describe('a report line for a spreadsheet', () => {
  test('neutralises cells a spreadsheet would run as formulas, and quotes as RFC 4180 does', () => {
    expect(csvLine(['=HYPERLINK("http://x")', '+1', '-2', '@SUM(A1)', '\tx', 'plain'], { neutralize: true })).toBe(`"'=HYPERLINK(""http://x"")",'+1,'-2,'@SUM(A1),'\tx,plain`);
    expect(csvLine(['=1', 'a,b'])).toBe('=1,"a,b"');
  });
});

describe('CLI import progress', () => {
  const capture = (tty: boolean, total: number, every = 2) => {
    const written: string[] = [];
    return { written, progress: new ImportProgress('imported', total, { tty, every, write: (text) => written.push(text) }) };
  };

  test('on a terminal: one line rewritten in place, the errors counted, each refused row on a line of its own', () => {
    const { written, progress } = capture(true, 3);
    progress.succeeded();
    progress.failed(3, ['the Common ID must be exactly 10 digits', 'the name must be 1 to 200 characters']);
    progress.succeeded();
    expect(written).toEqual([
      '\rimported 1/3\x1b[K',
      '\r\x1b[K',
      'row 3: the Common ID must be exactly 10 digits; the name must be 1 to 200 characters\n',
      '\rimported 1/3, 1 error\x1b[K',
      '\rimported 2/3, 1 error\x1b[K\n',
    ]);
  });

  test('elsewhere: the periodic lines scripts read, and the row lines', () => {
    const { written, progress } = capture(false, 3);
    progress.succeeded();
    progress.failed(3, ['a', 'b']);
    progress.succeeded();
    expect(written).toEqual(['row 3: a; b\n', 'imported 1/3\n', 'imported 2/3\n']);
  });

  test('a row with problems that was done all the same (its letter failed) counts as imported', () => {
    const { written, progress } = capture(false, 1);
    progress.failed(2, ['account created, but the letter exists'], true);
    expect(written.at(-1)).toBe('imported 1/1\n');
  });
});
