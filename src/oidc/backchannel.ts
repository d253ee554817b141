import type Provider from 'oidc-provider';
import { afterUnitCommits } from '../db/driver.ts';

type SessionPayload = { authorizations?: Record<string, { sid?: string }> };

/**
 * Tells the relying parties with back-channel logout that these sessions of an account have ended
 * (password reset, revocation, "sign out everywhere"): called with the sessions as they were
 * deleted. A relying party that does not answer is logged and does not hold the others up. Inside a
 * unit of work (every change that ends an account's sessions is one) the deliveries wait until it
 * has committed (no HTTP while its transaction holds the account's row) and are not made if it
 * rolled back: the sessions it ended are then still there.
 */
export async function notifyAccountLogout(provider: Provider, accountId: string, sessions: unknown[]): Promise<void> {
  await afterUnitCommits(() => notifySessionsLogout(provider, accountId, sessions as SessionPayload[]));
}

/**
 * Ends one sign-in session by its uid, as the end_session endpoint would: the session is gone, then
 * the relying parties with back-channel logout are told (used by SAML Single Logout, which ends
 * the session without a page of the provider's). Answers whether there was one.
 */
export async function endSessionByUid(provider: Provider, uid: string): Promise<boolean> {
  const session = await provider.Session.findByUid(uid);
  if (!session) return false;
  // Gone first, then told, as for an account's sessions: a relying party that checks back finds it ended.
  await session.destroy();
  if (session.accountId) await notifySessionsLogout(provider, session.accountId, [session as unknown as SessionPayload]);
  return true;
}

async function notifySessionsLogout(provider: Provider, accountId: string, sessions: SessionPayload[]): Promise<void> {
  const deliveries: Array<Promise<void>> = [];
  for (const payload of sessions) {
    for (const [clientId, { sid }] of Object.entries(payload.authorizations ?? {})) {
      if (sid) deliveries.push(tellClient(provider, clientId, accountId, sid));
    }
  }
  await Promise.all(deliveries);
}

/**
 * One relying party's delivery. Client#backchannelLogout is oidc-provider's own (signed logout
 * token, its fetch); its outcome is emitted as the provider's end_session endpoint emits it, without
 * a request: the same listeners log a failure (oidc/error-log.ts) and count both (the metrics). A
 * failure, the client's own read included, is emitted and never thrown, so the others are still told.
 */
async function tellClient(provider: Provider, clientId: string, accountId: string, sid: string): Promise<void> {
  let client: InstanceType<Provider['Client']> | undefined;
  try {
    client = await provider.Client.find(clientId);
    if (!client?.backchannelLogoutUri) return;
    await (client as unknown as { backchannelLogout(sub: string, sid: string): Promise<void> }).backchannelLogout(accountId, sid);
    provider.emit('backchannel.success', undefined, client, accountId, sid);
  } catch (error) {
    provider.emit('backchannel.error', undefined, error, client ?? { clientId }, accountId, sid);
  }
}
