import { embedJson, type FactorMethod, type MethodDeps, resultOf } from './method.ts';

/**
 * A security key or passkey (WebAuthn, user verification required). The challenge of the page last
 * shown is kept in the host's state; an answer to any other challenge fails.
 */
export function securityKey(deps: MethodDeps): FactorMethod {
  return {
    id: 'key',
    kinds: ['webauthn'],
    nameKey: 'mfa.webauthn_title',
    descriptionKey: 'mfa.key_description',
    available: () => true,
    setup: {
      view: 'mfa-setup-key',
      async page(host) {
        const account = (await deps.accounts.findById(host.accountId))!;
        const options = await deps.mfa.webauthnRegistrationOptions(account);
        await host.saveState({ webauthnChallenge: options.challenge });
        return { webauthn: { options: embedJson(options), action: host.url('webauthn'), mode: 'create', label: host.t('mfa.webauthn_register') } };
      },
      actions: {
        async webauthn(host) {
          const state = await host.state();
          const challenge = typeof state.webauthnChallenge === 'string' ? state.webauthnChallenge : '';
          const outcome = challenge
            ? await deps.mfa.confirmWebauthn(host.accountId, host.body.credential, challenge, host.t('mfa.webauthn_title'))
            : ({ ok: false, reason: 'webauthn_failed' } as const);
          if (outcome.ok) await host.saveState({ webauthnChallenge: null });
          return resultOf(host, outcome);
        },
      },
    },
    challenge: {
      view: 'mfa-challenge-key',
      async page(host) {
        const options = await deps.mfa.webauthnAuthenticationOptions(host.accountId);
        if (!options) return { webauthn: null };
        await host.saveState({ webauthnChallenge: options.challenge });
        return { webauthn: { options: embedJson(options), action: host.url('webauthn'), mode: 'get', label: host.t('mfa.webauthn_use') } };
      },
      actions: {
        async webauthn(host) {
          const state = await host.state();
          if (typeof state.webauthnChallenge !== 'string') return resultOf(host, { ok: false, reason: 'webauthn_failed' });
          return resultOf(host, await deps.mfa.verifyWebauthn(host.accountId, host.body.credential, state.webauthnChallenge));
        },
      },
    },
  };
}
