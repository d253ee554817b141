import { afterAll, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendToLock, type LockPlace, lockProblems, migrationNames, readLock } from '../../scripts/migration-lock.ts';

/**
 * Guards the rule that a landed migration is never edited or removed (0002 and 0004 once were, after
 * later migrations existed): test/unit/migration-hashes.json holds the sha256 of each, and a new migration must
 * be added to it with `npm run migrations:lock`.
 */
describe('migration lock', () => {
  test('every landed migration is unchanged and every migration is in the lock', () => {
    expect(migrationNames().length).toBeGreaterThanOrEqual(5);
    expect(lockProblems()).toEqual([]);
  });

  test('the lock holds the first migrations as they landed', () => {
    expect(Object.keys(readLock()).slice(0, 5)).toEqual(['0001_create_core.ts', '0002_create_mfa.ts', '0003_create_audit.ts', '0004_create_access_rules.ts', '0005_create_identity_links.ts']);
  });

  describe('on a folder of its own', () => {
    const made: string[] = [];
    afterAll(() => {
      for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
    });
    const folder = (): LockPlace => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'akamon-lock-'));
      made.push(root);
      const place = { dir: path.join(root, 'migrations'), lockFile: path.join(root, 'hashes.json') };
      fs.mkdirSync(place.dir);
      fs.writeFileSync(path.join(place.dir, '0001_create_a.ts'), 'export async function up() {}\n');
      fs.writeFileSync(path.join(place.dir, '0002_create_b.ts'), 'export async function up() {}\n');
      fs.writeFileSync(path.join(place.dir, 'types.d.ts'), 'export {};\n');
      expect(appendToLock(place)).toEqual(['0001_create_a.ts', '0002_create_b.ts']);
      expect(lockProblems(place)).toEqual([]);
      return place;
    };

    test('an edited migration fails and the lock script does not take the edit in', () => {
      const place = folder();
      const locked = readLock(place)['0001_create_a.ts'];
      fs.appendFileSync(path.join(place.dir, '0001_create_a.ts'), '// one more line\n');
      expect(lockProblems(place)).toEqual([expect.stringMatching(/^migrations\/0001_create_a\.ts changed after it landed: a landed migration is never edited/)]);
      expect(appendToLock(place)).toEqual([]);
      expect(readLock(place)['0001_create_a.ts']).toBe(locked);
      expect(lockProblems(place)).toHaveLength(1);
    });

    test('a removed migration fails', () => {
      const place = folder();
      fs.rmSync(path.join(place.dir, '0002_create_b.ts'));
      expect(lockProblems(place)).toEqual([expect.stringMatching(/^migrations\/0002_create_b\.ts has landed .* but is gone/)]);
    });

    test('a new migration fails until the lock script adds it, keeping the existing entries', () => {
      const place = folder();
      const before = readLock(place);
      fs.writeFileSync(path.join(place.dir, '0003_add_c.ts'), 'export async function up() {}\n');
      expect(lockProblems(place)).toEqual([
        'migrations/0003_add_c.ts is not in test/unit/migration-hashes.json yet: run `npm run migrations:lock` to add its hash once it is final (it is frozen from then on)',
      ]);
      expect(appendToLock(place)).toEqual(['0003_add_c.ts']);
      expect(readLock(place)).toEqual({ ...before, '0003_add_c.ts': expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(Object.keys(readLock(place))).toEqual(['0001_create_a.ts', '0002_create_b.ts', '0003_add_c.ts']);
      expect(lockProblems(place)).toEqual([]);
    });

    test('a new migration numbered before a landed one fails', () => {
      const place = folder();
      fs.writeFileSync(path.join(place.dir, '0001_add_z.ts'), 'export async function up() {}\n');
      expect(lockProblems(place)).toEqual([expect.stringMatching(/^migrations\/0001_add_z\.ts sorts before the landed 0002_create_b\.ts/)]);
    });
  });
});
