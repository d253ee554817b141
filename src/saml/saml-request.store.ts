import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { randomToken } from '../crypto/tokens.ts';
import { DomainError } from '../shared/errors.ts';
import type { NameIdSetting } from './attributes.ts';
import type { SubjectRequirement } from './requested-subject.ts';

/** What is kept of an AuthnRequest while the person signs in: where and how to answer. */
export interface PendingRequest {
  /** The consumer service the answer is posted to (a registered one, checked on arrival). */
  acsUrl: string;
  relayState: string | null;
  /** The AuthnRequest's ID (InResponseTo); null for IdP-initiated sign-in. */
  requestId: string | null;
  passive: boolean;
  /** The SP asked for MFA (REFEDS MFA): the answer must say MFA was done, or fail. */
  wantsMfa: boolean;
  /** ForceAuthn: only a sign-in made after the request arrived (receivedAt, ms) answers it. */
  forceAuthn: boolean;
  receivedAt: number;
  /** The PKCE verifier of the authorization made for it: its code answers this request and no other. */
  verifier: string;
  /** The NameID format to answer with (the registered one, or transient where the SP asked for it). */
  nameIdFormat: NameIdSetting;
  /** The request named its Subject: only that person is answered with an assertion. */
  subject?: SubjectRequirement;
}

/**
 * AuthnRequests on their way through the sign-in steps. Each is answered once: `take` marks it
 * answered in the same statement that reads it, so of two tabs (or twenty requests) racing with
 * one, exactly one gets it. An SP's request ID is accepted once (saml_request_replay_key).
 */
export class SamlRequestStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /** Stores a request; a request ID this SP used before is refused as a replay. */
  async add(clientId: string, browserHash: string, request: PendingRequest, ttlSeconds: number): Promise<string> {
    const id = randomToken();
    try {
      await this.#db
        .insertInto('saml_request')
        .values({
          id,
          client_id: clientId,
          request_id: request.requestId,
          browser_hash: browserHash,
          details: JSON.stringify(request),
          expires_at: sql<Date>`now() + make_interval(secs => ${ttlSeconds})` as never,
        })
        .execute();
    } catch (error) {
      if ((error as { code?: string }).code === '23505') throw new DomainError('saml_replayed', `request ${request.requestId} of ${clientId} was received before`);
      throw error;
    }
    return id;
  }

  /** The request, now answered, if it is this browser's, unanswered and unexpired. */
  async take(id: string, browserHash: string): Promise<(PendingRequest & { clientId: string }) | undefined> {
    if (id.length > 100) return undefined;
    const row = await this.#db
      .updateTable('saml_request')
      .set({ answered_at: sql<Date>`now()` as never })
      .where('id', '=', id)
      .where('browser_hash', '=', browserHash)
      .where('answered_at', 'is', null)
      .where('expires_at', '>', sql<Date>`now()`)
      .returning(['client_id', 'details'])
      .executeTakeFirst();
    return row ? { ...(row.details as unknown as PendingRequest), clientId: row.client_id } : undefined;
  }

  /**
   * Expired requests go. The row is also what refuses a replayed request ID, so it must outlive the
   * window in which sso.ts accepts a request at all (IssueInstant within the clock skew either way,
   * 2 x 300 s): it lives for the interaction's lifetime (an hour), far longer.
   */
  async deleteExpired(limit: number): Promise<number> {
    const result = await sql`delete from saml_request where id in (select id from saml_request where expires_at < now() limit ${limit})`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}
