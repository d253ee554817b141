// The lock of landed migrations: test/unit/migration-hashes.json holds the sha256 of every migration
// that has landed. A landed migration has run on databases out there, so editing it changes nothing
// for them and makes new databases differ from old ones: a change is always a new migration.
//
//   npm run migrations:lock   adds the hash of each migration not yet in the lock (never rewrites one)
//
// test/unit/migration-lock.test.ts fails when a locked migration changed or disappeared, or when a
// migration is not in the lock yet. The lock lives outside migrations/, where every file is a migration.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface LockPlace {
  /** The migrations folder. */
  dir: string;
  /** The JSON file of name -> sha256. */
  lockFile: string;
}

export const REPOSITORY: LockPlace = {
  dir: fileURLToPath(new URL('../migrations', import.meta.url)),
  lockFile: fileURLToPath(new URL('../test/unit/migration-hashes.json', import.meta.url)),
};
const LOCK_NAME = 'test/unit/migration-hashes.json';

/** The files kysely's FileMigrationProvider runs, by name (which is their order). */
export function migrationNames(place = REPOSITORY): string[] {
  return fs
    .readdirSync(place.dir)
    .filter((name) => /\.(ts|mts|js|mjs)$/.test(name) && !/\.d\.m?ts$/.test(name))
    .sort();
}

function hashOf(place: LockPlace, name: string): string {
  return createHash('sha256')
    .update(fs.readFileSync(path.join(place.dir, name)))
    .digest('hex');
}

export function readLock(place = REPOSITORY): Record<string, string> {
  return fs.existsSync(place.lockFile) ? (JSON.parse(fs.readFileSync(place.lockFile, 'utf8')) as Record<string, string>) : {};
}

/** Every way the migrations differ from the lock, one line each with what to do. */
export function lockProblems(place = REPOSITORY): string[] {
  const lock = readLock(place);
  const names = migrationNames(place);
  const problems: string[] = [];
  for (const [name, hash] of Object.entries(lock)) {
    if (!names.includes(name)) {
      problems.push(`migrations/${name} has landed (it is in ${LOCK_NAME}) but is gone: a landed migration is never removed; restore it`);
    } else if (hashOf(place, name) !== hash) {
      problems.push(`migrations/${name} changed after it landed: a landed migration is never edited (databases that ran it keep the old version); undo the edit and put the change in a new migration`);
    }
  }
  const lastLocked = Object.keys(lock).sort().at(-1);
  for (const name of names.filter((n) => !(n in lock))) {
    if (lastLocked && name < lastLocked) {
      problems.push(`migrations/${name} sorts before the landed ${lastLocked}: databases that ran that one would refuse it; number it after the last landed migration`);
    } else {
      problems.push(`migrations/${name} is not in ${LOCK_NAME} yet: run \`npm run migrations:lock\` to add its hash once it is final (it is frozen from then on)`);
    }
  }
  return problems;
}

/** Adds each migration missing from the lock; existing entries are kept as they are, even if their file changed. */
export function appendToLock(place = REPOSITORY): string[] {
  const lock = readLock(place);
  const added = migrationNames(place).filter((name) => !(name in lock));
  if (added.length === 0) return [];
  const next = { ...lock };
  for (const name of added) next[name] = hashOf(place, name);
  fs.writeFileSync(place.lockFile, `${JSON.stringify(next, null, 2)}\n`);
  return added;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const added = appendToLock();
  console.log(added.length ? `Locked ${added.map((n) => `migrations/${n}`).join(', ')}` : 'Every migration is already in the lock.');
  const problems = lockProblems();
  for (const problem of problems) console.error(problem);
  process.exitCode = problems.length ? 1 : 0;
}
