import { performance } from 'node:perf_hooks';
import type { Context } from 'koa';
import { sql, type Kysely } from 'kysely';
import Provider, { type AdapterPayload, type KoaContextWithOIDC } from 'oidc-provider';
import type { DB } from '../db/schema.ts';
import { TOKEN_RETRY_EARLIEST_SECONDS } from '../config/defaults.ts';
import { DEVICE_CODE_GRANT } from '../client/client-settings.ts';

/**
 * The retry grace of token requests (issue 12 point 4), as Okta's refresh-token grace period and
 * Auth0's reuse interval do it. A token request whose answer was lost after it committed (the
 * connection dropped, a proxy reset it, the node's read of the COMMIT timed out and it answered 503)
 * leaves the client holding a code or refresh token that is already consumed. Presented again, the
 * provider would take it for a replay and revoke the grant: the person signed out by a network
 * fault. Here a second presentation is a retry when all of these hold:
 * - it is the client's (the provider checks the client, PKCE and redirect_uri before it consumes);
 * - it comes within the grace (AKAMON_TOKEN_RETRY_GRACE_SECONDS) of the consumption;
 * - it arrived at least TOKEN_RETRY_EARLIEST_SECONDS after the consumption. A client learns that
 *   an answer was lost from its timeout, or from a 503 that says Retry-After; a copy arriving
 *   sooner was sent alongside the first (a double submit, or a second holder racing it), and the
 *   20 parallel redemptions of one code still give exactly one answer. The arrival is taken before
 *   the request waited for a connection or a lock, so waiting does not make a copy look late;
 * - the refresh token the first answer carried was never used, and no retry was granted before.
 * A retry revokes the access token of the lost answer and sets its refresh token aside, consumed,
 * as a tripwire: whoever presents it later held it while the client did not, and revokes the
 * grant. The client gets a fresh set. Anything else is a replay and revokes the grant, as before.
 *
 * Each consumed code or refresh token gets one retry. Of parallel retries one wins and the others
 * are replays that revoke the grant, the winner's new set with it: two senders of one consumed token
 * are two parties (or a client gone wrong), and nothing tells which of them the new set went to.
 * A lost answer makes one retry, so a well-behaved client never meets this.
 *
 * Storage: each access and refresh token records in its `replaces` column what it was issued in
 * exchange for, and a consumed one records its retry in `retried_at` (migration 0008). Columns, not
 * payload fields: the payload is the provider's (its models keep only the fields they know), and a
 * retry is decided like a consumption, by a locked row, which a column states plainly.
 */

/** The grant types that consume what they present: its model, the parameter that carries it, and what a replay is called. */
const PRESENTED: Record<string, { model: string; parameter: string; replay: string }> = {
  authorization_code: { model: 'AuthorizationCode', parameter: 'code', replay: 'authorization code already consumed' },
  refresh_token: { model: 'RefreshToken', parameter: 'refresh_token', replay: 'refresh token already used' },
  [DEVICE_CODE_GRANT]: { model: 'DeviceCode', parameter: 'device_code', replay: 'device code already consumed' },
};

/** Whether a token request of this grant type consumes what it presents (the protocol gate runs it as one unit of work). */
export const consumesPresented = (grantType: unknown): boolean => typeof grantType === 'string' && Object.hasOwn(PRESENTED, grantType);
const SUCCESSOR_MODELS = new Set(['AccessToken', 'RefreshToken']);

interface TokenRequest {
  /** performance.now() when the request reached the protocol gate, before it waited for a database connection. */
  readonly arrived: number;
  /** The presented code or refresh token, when it was found consumed already: consume() then tells a retry from a replay. */
  foundConsumed?: string;
  /** What this request consumed, or was granted a retry of: the tokens it writes next replace it. */
  replacing?: { id: string; grantId: string };
  /** A retry granted to this request, for the log. */
  retried?: { grantId: string; consumedSecondsAgo: number };
}

/** Keyed by the request's context, which the provider hands to its adapter through Provider.ctx. */
const requests = new WeakMap<object, TokenRequest>();

/**
 * Runs a token request that consumes a code or refresh token (the protocol gate calls it before the
 * request waits for its unit of work), and logs a retry once the answer is committed.
 */
export async function servingTokenRequest(ctx: Context, serve: () => Promise<unknown>): Promise<void> {
  const request: TokenRequest = { arrived: performance.now() };
  requests.set(ctx, request);
  await serve();
  if (!request.retried || ctx.status !== 200) return;
  const oidc = (ctx as unknown as KoaContextWithOIDC).oidc;
  // Named fields only, as error-log.ts does: nothing the request carried as a secret.
  ctx.state.log.warn(
    { event: 'token.retried', clientId: oidc?.client?.clientId, grantType: String(oidc?.params?.grant_type), ...request.retried },
    'token request answered as a retry of a lost answer',
  );
}

/** The token request this adapter call serves, when the call concerns the code or refresh token that request presents. */
function presenting(model: string, id: string): TokenRequest | undefined {
  const ctx = Provider.ctx;
  const request = ctx && requests.get(ctx);
  const params = ctx?.oidc?.params as Record<string, unknown> | undefined;
  const presented = PRESENTED[String(params?.grant_type)];
  return request && presented?.model === model && params?.[presented.parameter] === id ? request : undefined;
}

/** Whether `id` is what the token request being served presents (its code, device code or refresh token). */
export const isPresented = (model: string, id: string): boolean => presenting(model, id) !== undefined;

export interface Refusal {
  /** The provider's error_detail: logged (error-log.ts), never shown to the client. */
  detail: string;
  /** The grant to revoke; absent when the token is gone already. */
  grantId?: string;
}

interface Row {
  model: string;
  id: string;
  grant_id: string;
  consumed: boolean;
  retried: boolean;
  in_grace: boolean;
  arrived_after_use: boolean;
  age: number;
}

/** The adapter's side of the retry grace: it calls these from find, consume and upsert. */
export class TokenRetries {
  readonly #db: Kysely<DB>;
  readonly #graceSeconds: number;

  constructor(db: Kysely<DB>, graceSeconds: number) {
    this.#db = db;
    this.#graceSeconds = graceSeconds;
  }

  /**
   * A consumed code or refresh token that the token request presents is handed to the provider as
   * unconsumed, so that the provider checks everything else and then calls consume(), where claim()
   * decides. Read anywhere else (introspection, revocation) it stays consumed.
   */
  shown(model: string, id: string, payload: AdapterPayload | undefined): AdapterPayload | undefined {
    const request = payload?.consumed ? presenting(model, id) : undefined;
    if (request && payload) {
      request.foundConsumed = id;
      delete payload.consumed;
    }
    return payload;
  }

  /** Whether consuming `id` is presenting it again: claim() decides, not the atomic first consumption. */
  presentedAgain(model: string, id: string): boolean {
    return presenting(model, id)?.foundConsumed === id;
  }

  /** The first consumption of `id` succeeded: the tokens this request writes next replace it. */
  consumed(model: string, id: string, grantId: string | null): void {
    const request = presenting(model, id);
    if (request && grantId) request.replacing = { id, grantId };
  }

  /** The code or refresh token that an access or refresh token being written now was issued in exchange for. */
  replaced(model: string, payload: AdapterPayload): string | null {
    const ctx = Provider.ctx;
    const replacing = ctx && SUCCESSOR_MODELS.has(model) ? requests.get(ctx)?.replacing : undefined;
    return replacing && replacing.grantId === payload.grantId ? replacing.id : null;
  }

  /**
   * Grants the retry of the consumed `id` (undefined), or says why it is a replay. Runs inside the
   * token request's unit of work: the locks hold until it commits, and if it fails nothing changed.
   */
  async claim(model: string, id: string): Promise<Refusal | undefined> {
    const request = presenting(model, id)!;
    const replay = PRESENTED[String(Provider.ctx?.oidc?.params?.grant_type)]!.replay;
    // The arrival on the database's clock: the node measured how long ago it was (monotonic).
    const sinceArrival = (performance.now() - request.arrived) / 1000;
    // The token and what it was exchanged for, locked through the grant's index, in the order a
    // revocation of the grant locks them. Parallel retries wait here for the first, then see its retry.
    const { rows } = await sql<Row>`
      select model, id, grant_id,
        consumed_at is not null as consumed,
        retried_at is not null as retried,
        consumed_at > clock_timestamp() - make_interval(secs => ${this.#graceSeconds}) as in_grace,
        consumed_at < clock_timestamp() - make_interval(secs => ${sinceArrival + TOKEN_RETRY_EARLIEST_SECONDS}) as arrived_after_use,
        extract(epoch from clock_timestamp() - consumed_at)::float8 as age
      from oidc_payload
      where grant_id = (select grant_id from oidc_payload where model = ${model} and id = ${id})
        and ((model = ${model} and id = ${id}) or (replaces = ${id} and model in ('AccessToken', 'RefreshToken')))
      for update`.execute(this.#db);
    const token = rows.find((row) => row.model === model && row.id === id);
    if (!token) return { detail: `${replay}: it is gone` };
    const successors = rows.filter((row) => row !== token);
    // A public client proves nothing but the token: its second presentation cannot be told from a
    // stolen copy, and the retry would hand the copy a live chain. Only confidential clients retry.
    const isPublic = Provider.ctx?.oidc?.client?.clientAuthMethod === 'none';
    const why = isPublic
      ? 'the client does not authenticate, so a second presentation gets no retry'
      : token.retried
        ? 'its one retry was granted already'
        : !token.in_grace
          ? `presented again after the ${this.#graceSeconds} s retry grace`
          : !token.arrived_after_use
            ? `presented again within ${TOKEN_RETRY_EARLIEST_SECONDS} s of its first use, alongside it`
            : successors.length === 0
              ? 'nothing it was exchanged for is left (a token set aside by a retry, or one consumed before retries were recorded)'
              : successors.some((row) => row.model === 'RefreshToken' && row.consumed)
                ? 'the refresh token it was exchanged for has been used'
                : undefined;
    if (why) return { grantId: token.grant_id, detail: `${replay}: ${why}; the grant is revoked` };

    const grantId = token.grant_id;
    await sql`
      with retried as (
        update oidc_payload set retried_at = clock_timestamp() where model = ${model} and id = ${id}
      ), set_aside as (
        update oidc_payload set consumed_at = clock_timestamp() where model = 'RefreshToken' and grant_id = ${grantId} and replaces = ${id}
      )
      delete from oidc_payload where model = 'AccessToken' and grant_id = ${grantId} and replaces = ${id}`.execute(this.#db);
    request.replacing = { id, grantId };
    request.retried = { grantId, consumedSecondsAgo: Math.round(token.age) };
    return undefined;
  }
}
