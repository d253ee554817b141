import type { KoaContextWithOIDC } from 'oidc-provider';
import type { GrantConsent } from './oidc-payload.store.ts';

/** What the account's grants to the client still in force record (OidcPayloadStore.liveGrants). */
export type LiveGrants = (accountId: string, clientId: string) => Promise<GrantConsent[]>;

/**
 * First-party clients (Akamon's own account home, the university's core systems) never show a
 * consent page: their grant is created or widened here. Others keep the grant the person gave in
 * this session, or else start from the consent the account gave the client before (remembered).
 */
export function loadExistingGrant(liveGrants: LiveGrants, unitOfWork: <T>(work: () => Promise<T>) => Promise<T>) {
  return async (ctx: KoaContextWithOIDC) => {
    const { oidc } = ctx;
    const client = oidc.client!;
    const accountId = oidc.session!.accountId!;
    const grantId = (oidc.result?.consent as { grantId?: string } | undefined)?.grantId ?? oidc.session!.grantIdFor(client.clientId);
    const existing = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    // Read and saved in one transaction (a resume's, or its own on a silent sign-in): a Remove access
    // meanwhile waits for it and then takes the grant saved (OidcPayloadStore.revokeClient).
    if (!(client as unknown as { first_party?: boolean }).first_party) return existing ?? (await unitOfWork(() => remembered(ctx, liveGrants)));
    const grant = existing ?? new oidc.provider.Grant({ clientId: client.clientId, accountId });
    grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
    grant.addOIDCClaims([...oidc.requestParamClaims]);
    await grant.save();
    return grant;
  };
}

/**
 * Consent lasts per account and client, not per sign-in session: a new session's grant starts with
 * all the account's live grants to the client allowed (and withheld), so the consent prompt asks only
 * for what is new, or not at all. A grant of its own rather than a shared one, because a sign-out
 * revokes the tokens of its session's grants: sharing one would end other browsers' tokens too. It
 * is saved at once so that the consent step widens it (it finds the grant by the id the session
 * records). Whatever ends an account's grants (sign out everywhere, suspension, revocation,
 * password reset) leaves nothing to start from, and the next sign-in asks again.
 */
async function remembered(ctx: KoaContextWithOIDC, liveGrants: LiveGrants) {
  const { provider, client, session } = ctx.oidc;
  const accountId = session!.accountId!;
  const earlier = await liveGrants(accountId, client!.clientId);
  if (!earlier.length) return undefined;
  const grant = new provider.Grant({ accountId, clientId: client!.clientId });
  for (const { openid, rejected, resources } of earlier) {
    if (openid?.scope) grant.addOIDCScope(openid.scope);
    if (openid?.claims?.length) grant.addOIDCClaims(openid.claims);
    if (rejected?.openid?.scope) grant.rejectOIDCScope(rejected.openid.scope);
    if (rejected?.openid?.claims?.length) grant.rejectOIDCClaims(rejected.openid.claims);
    for (const [indicator, scope] of Object.entries(resources ?? {})) grant.addResourceScope(indicator, scope);
    for (const [indicator, scope] of Object.entries(rejected?.resources ?? {})) grant.rejectResourceScope(indicator, scope);
  }
  await grant.save();
  return grant;
}
