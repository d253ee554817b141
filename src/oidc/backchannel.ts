import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { DB } from '../db/schema.ts';

/**
 * Tells the relying parties with back-channel logout that every session of an account has ended
 * (password reset, revocation, "sign out everywhere"). Called before the sessions are deleted;
 * a relying party that does not answer is logged and does not hold the others up.
 */
export async function notifyAccountLogout(provider: Provider, db: Kysely<DB>, accountId: string, logger: Logger): Promise<number> {
  const sessions = await db.selectFrom('oidc_payload').select('payload').where('model', '=', 'Session').where('account_id', '=', accountId).execute();
  const deliveries: Array<Promise<void>> = [];
  for (const { payload } of sessions) {
    const authorizations = (payload as { authorizations?: Record<string, { sid?: string }> }).authorizations ?? {};
    for (const [clientId, { sid }] of Object.entries(authorizations)) {
      const client = await provider.Client.find(clientId);
      if (!client?.backchannelLogoutUri || !sid) continue;
      // Client#backchannelLogout is oidc-provider's own delivery (signed logout token, its fetch).
      const deliver = (client as unknown as { backchannelLogout(sub: string, sid: string): Promise<void> }).backchannelLogout.bind(client);
      deliveries.push(
        deliver(accountId, sid).catch((error: Error) => {
          logger.warn({ err: { message: error.message }, clientId }, 'back-channel logout delivery failed');
        }),
      );
    }
  }
  await Promise.all(deliveries);
  return deliveries.length;
}
