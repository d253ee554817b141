import fs from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { randomToken, sha256 } from '../crypto/tokens.ts';

export const OPERATOR_TOKEN_FILE = 'operator-token';

/**
 * Operator credentials for the admin API: random bearer tokens, stored as SHA-256 hashes (they
 * carry 256 bits, so a slow hash adds nothing). The first start writes one to the data directory.
 */
export class OperatorStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  async create(name: string): Promise<string> {
    const token = randomToken('akop_');
    await this.#db
      .insertInto('operator')
      .values({ name, token_hash: sha256(token) })
      .execute();
    return token;
  }

  /** Looks the token up by its hash: no comparison of secrets happens in JavaScript. */
  async verify(token: string): Promise<string | undefined> {
    if (!/^akop_[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    const row = await this.#db
      .updateTable('operator')
      .set({ last_used_at: sql<Date>`now()` as never })
      .where('token_hash', '=', sha256(token))
      .returning('name')
      .executeTakeFirst();
    return row?.name;
  }

  /** On an empty database: creates the first operator and writes its token (mode 0600). */
  async ensureInitial(dataDir: string): Promise<string | undefined> {
    const existing = await this.#db.selectFrom('operator').select('id').limit(1).executeTakeFirst();
    if (existing) return undefined;
    const token = await this.create('initial');
    await fs.mkdir(dataDir, { recursive: true });
    const file = path.join(dataDir, OPERATOR_TOKEN_FILE);
    await fs.writeFile(file, `${token}\n`, { mode: 0o600 });
    return file;
  }
}
