import type Provider from 'oidc-provider';
import { afterUnitCommits } from '../db/driver.ts';
import { DeliveryDeferred } from '../shared/errors.ts';

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
  // Gone first, then told, as for an account's sessions: a relying party that checks back finds it
  // ended. Inside a unit of work (SAML Single Logout's) only once it has committed.
  await session.destroy();
  const { accountId } = session;
  if (accountId) await afterUnitCommits(() => notifySessionsLogout(provider, accountId, [session as unknown as SessionPayload]));
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

/** One relying party's delivery; its outcome is emitted by deliverAfterCommit, a failed read of the client here. */
async function tellClient(provider: Provider, clientId: string, accountId: string, sid: string): Promise<void> {
  let client: InstanceType<Provider['Client']> | undefined;
  try {
    client = await provider.Client.find(clientId);
    if (!client?.backchannelLogoutUri) return;
    await (client as unknown as Deliverer).backchannelLogout(accountId, sid);
  } catch (error) {
    if (!(error instanceof DeliveryDeferred)) provider.emit('backchannel.error', undefined, error, client ?? { clientId }, accountId, sid);
  }
}

type Deliverer = { backchannelLogout(sub: string, sid: string): Promise<void> };

/**
 * Every back-channel logout delivery (Client#backchannelLogout: oidc-provider's signed logout token
 * and its fetch), the provider's own end_session's included, is made once the unit of work it was
 * asked in has committed (at once outside one): a sign-out is one unit (provider-gate.ts), and a
 * relying party that does not answer must not hold its transaction (on PGlite, the one connection)
 * nor be told of a sign-out that rolled back. Its outcome is emitted then, as end_session emits it
 * but without a request, so the same listeners log a failure (error-log.ts) and count both (the
 * metrics); the method itself answers DeliveryDeferred, which they skip. A failure is never thrown,
 * so the others are still told.
 */
export function deliverAfterCommit(provider: Provider): void {
  const prototype = provider.Client.prototype as unknown as Deliverer;
  const deliver = prototype.backchannelLogout;
  prototype.backchannelLogout = async function (this: InstanceType<Provider['Client']>, sub: string, sid: string) {
    await afterUnitCommits(async () => {
      try {
        await deliver.call(this as unknown as Deliverer, sub, sid);
        provider.emit('backchannel.success', undefined, this, sub, sid);
      } catch (error) {
        provider.emit('backchannel.error', undefined, error, this, sub, sid);
      }
    });
    throw new DeliveryDeferred('delivered apart from the request');
  };
}
