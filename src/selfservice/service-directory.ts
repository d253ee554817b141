import type Router from '@koa/router';
import { DENIAL_REASON_TEXT, DENIAL_TODO_TEXT } from '../access/denial-text.ts';
import { formatDate, translator } from '../i18n/i18n.ts';
import { rolloutPhase } from '../mfa/rollout.ts';
import { localName } from '../client/client-settings.ts';
import type { AccountHomeDeps } from './account-home.ts';
import type { HomeSession } from './home-session.ts';

export function serviceDirectoryRoutes(router: Router, deps: AccountHomeDeps, home: HomeSession): void {
  const { signedIn } = home;
  /**
   * The service directory: every listed client, whether it demands MFA (○/×, or the day from which
   * it will) and, for a signed-in
   * person, whether this account may use it, decided by the same rules that enforce access.
   */
  router.get('/services', async (ctx) => {
    const t = translator(ctx.state.locale);
    const account = await signedIn(ctx);
    /** ○ when the system asks for a second factor now; a scheduled requirement shows its day instead of ×. */
    const mfaColumn = (client: { require_mfa: boolean; mfa_warning_from: Date | string | null; mfa_required_from: Date | string | null }) => {
      const rollout = rolloutPhase(deps.clock.now(), deps.config.mfaRollout, { warningFrom: client.mfa_warning_from, requiredFrom: client.mfa_required_from });
      const mfa = client.require_mfa || rollout.phase === 'required';
      return { mfa, mfaFrom: !mfa && rollout.requiredFrom ? t('services.mfa_from', { date: formatDate(ctx.state.locale, rollout.requiredFrom, deps.config.timeZone) }) : null };
    };
    const services = await Promise.all(
      (await deps.clients.listed()).map(async (client) => {
        const decision = account ? await deps.access.decide(account, client) : undefined;
        return {
          name: localName(ctx.state.locale, client.name, client.name_ja),
          description: client.description,
          homepage: client.homepage_url ?? samlSignInLink(client),
          ...mfaColumn(client),
          forYou:
            decision === undefined
              ? null
              : decision.allowed
                ? { allowed: true, text: t('services.allowed') }
                : { allowed: false, text: t(DENIAL_REASON_TEXT[decision.reason], { client: localName(ctx.state.locale, client.name, client.name_ja) }), todo: t(DENIAL_TODO_TEXT[decision.reason]) },
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
