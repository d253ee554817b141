import type Router from '@koa/router';
import { DENIAL_REASON_TEXT, DENIAL_TODO_TEXT } from '../access/denial-text.ts';
import { translator } from '../i18n/i18n.ts';
import { rolloutPhase } from '../mfa/rollout.ts';
import type { AccountHomeDeps } from './account-home.ts';
import type { HomeSession } from './home-session.ts';

export function serviceDirectoryRoutes(router: Router, deps: AccountHomeDeps, home: HomeSession): void {
  const { signedIn } = home;
  /**
   * The service directory: every listed client, whether it demands MFA (○/×) and, for a signed-in
   * person, whether this account may use it, decided by the same rules that enforce access.
   */
  router.get('/services', async (ctx) => {
    const t = translator(ctx.state.locale);
    const account = await signedIn(ctx);
    const services = await Promise.all(
      (await deps.clients.listed()).map(async (client) => {
        const decision = account ? await deps.access.decide(account, client) : undefined;
        return {
          name: client.name,
          description: client.description,
          homepage: client.homepage_url ?? samlSignInLink(client),
          mfa: client.require_mfa || rolloutPhase(deps.clock.now(), deps.config.mfaRollout, { warningFrom: client.mfa_warning_from, requiredFrom: client.mfa_required_from }).phase === 'required',
          forYou:
            decision === undefined
              ? null
              : decision.allowed
                ? { allowed: true, text: t('services.allowed') }
                : { allowed: false, text: t(DENIAL_REASON_TEXT[decision.reason], { client: client.name }), todo: t(DENIAL_TODO_TEXT[decision.reason]) },
        };
      }),
    );
    deps.renderer.page(ctx, 'services', 'services.title', { services, signedIn: Boolean(account), signInUrl: '/account/login' });
  });
}

/** A SAML SP that accepts sign-in started at Akamon is reached through it, signed in on arrival. */
function samlSignInLink(client: { client_id: string; protocol: string; saml: unknown }): string | null {
  const idpInitiated = client.protocol === 'saml' && (client.saml as { idpInitiated?: boolean } | null)?.idpInitiated === true;
  return idpInitiated ? `/saml/init?sp=${encodeURIComponent(client.client_id)}` : null;
}
