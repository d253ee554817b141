import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import { randomToken, sha256 } from '../crypto/tokens.ts';
import { CookieSignatures } from '../crypto/cookie-signatures.ts';

export const SIGNING_ALGS = ['ES256', 'RS256'] as const;

export interface KeyMaterial {
  /** Private JWKs in the order oidc-provider needs: the first key of an algorithm signs. */
  readonly jwks: { keys: Record<string, unknown>[] };
  readonly cookieSignatures: CookieSignatures;
  /**
   * The RS256 keys as SAML uses them (it names keys by certificate): the one that signs first, then
   * the next one (published before it signs, so SPs learn it from the metadata) and retired ones.
   */
  readonly rsaKeys: Array<{ kid: string; privateJwk: JWK; publicJwk: JWK; createdAt: Date }>;
  /** Changes whenever the set of keys changes, so nodes know when to rebuild the provider. */
  readonly fingerprint: string;
}

export interface KeyTimings {
  /** How long a new key is published before it signs, so every node serves it first. */
  propagationSeconds: number;
  /** How long a retired key stays published: the longest lifetime of anything it signed. */
  retiredGraceSeconds: number;
}

async function newSigningKey(alg: (typeof SIGNING_ALGS)[number], box: SecretBox) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomToken().slice(0, 22);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, public_jwk: JSON.stringify(publicJwk), private_jwk_enc: box.encrypt(JSON.stringify(privateJwk)) };
}

// Serialises key creation across nodes starting at the same moment.
const KEY_LOCK = 0x616b616d;

/** Creates the first signing and cookie keys if the database has none. Idempotent across nodes. */
export async function ensureKeys(db: Kysely<DB>, box: SecretBox): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${KEY_LOCK})`.execute(trx);
    const existing = await trx.selectFrom('signing_key').select('kid').limit(1).executeTakeFirst();
    if (existing) return false;
    for (const alg of SIGNING_ALGS) {
      await trx
        .insertInto('signing_key')
        .values({ ...(await newSigningKey(alg, box)), activates_at: sql`now()` } as never)
        .execute();
    }
    await trx
      .insertInto('cookie_key')
      .values({ key_enc: box.encrypt(randomBytes(32).toString('base64url')) })
      .execute();
    return true;
  });
}

/** The key pairs of a rotation, one per algorithm, made before its transaction (an RSA key takes CPU time). */
export type NewSigningKeys = Array<Awaited<ReturnType<typeof newSigningKey>>>;

export function newSigningKeys(box: SecretBox): Promise<NewSigningKeys> {
  return Promise.all(SIGNING_ALGS.map((alg) => newSigningKey(alg, box)));
}

/**
 * Publishes keys made by newSigningKeys: each is published at once but signs only after the
 * propagation delay; the keys it replaces stop signing then and leave JWKS after the grace period.
 * Its own transaction, or a savepoint of the caller's unit of work (where the audit record joins it).
 */
export async function rotateSigningKeys(db: Kysely<DB>, keys: NewSigningKeys, timings: KeyTimings): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${KEY_LOCK})`.execute(trx);
    const activatesAt = sql<Date>`now() + make_interval(secs => ${timings.propagationSeconds})`;
    await trx.updateTable('signing_key').set({ retired_at: activatesAt }).where('retired_at', 'is', null).execute();
    for (const key of keys) {
      await trx
        .insertInto('signing_key')
        .values({ ...key, activates_at: activatesAt } as never)
        .execute();
    }
    await trx.deleteFrom('signing_key').where('retired_at', '<', sql<Date>`now() - make_interval(secs => ${timings.retiredGraceSeconds})`).execute();
    return keys.map((key) => key.kid);
  });
}

export async function loadKeyMaterial(db: Kysely<DB>, box: SecretBox, timings: KeyTimings): Promise<KeyMaterial> {
  const rows = await db
    .selectFrom('signing_key')
    .select(['kid', 'alg', 'public_jwk', 'private_jwk_enc', 'activates_at', 'retired_at', sql<boolean>`activates_at <= now() and (retired_at is null or retired_at > now())`.as('signing')])
    .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', sql<Date>`now() - make_interval(secs => ${timings.retiredGraceSeconds})`)]))
    .orderBy('activates_at', 'desc')
    .execute();
  // Signing keys first (newest first), then keys waiting to sign, then retired ones still published.
  const rank = (r: (typeof rows)[number]) => (r.signing ? 0 : r.retired_at && new Date(r.retired_at) <= new Date() ? 2 : 1);
  rows.sort((a, b) => rank(a) - rank(b));
  const cookieRows = await db.selectFrom('cookie_key').select(['id', 'key_enc']).orderBy('id', 'desc').execute();
  if (rows.length === 0 || cookieRows.length === 0) throw new Error('no keys in the database: run the server once or akamon migrate');
  const open = (ciphertext: string) => {
    try {
      return box.decrypt(ciphertext);
    } catch {
      throw new Error('the keys in the database were encrypted with another AKAMON_SECRET: use the secret this database was created with');
    }
  };
  const privateJwks = rows.map((r) => JSON.parse(open(r.private_jwk_enc)) as JWK);
  return {
    jwks: { keys: privateJwks as Record<string, unknown>[] },
    cookieSignatures: new CookieSignatures(cookieRows.map((r) => open(r.key_enc))),
    rsaKeys: rows.flatMap((r, i) => (r.alg === 'RS256' ? [{ kid: r.kid, privateJwk: privateJwks[i], publicJwk: r.public_jwk as JWK, createdAt: new Date(r.activates_at) }] : [])),
    fingerprint: sha256(JSON.stringify([rows.map((r) => [r.kid, rank(r)]), cookieRows.map((r) => r.id)])),
  };
}
