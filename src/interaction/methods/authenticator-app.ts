import type * as QRCode from 'qrcode';
import { lazyModule } from '../../shared/lazy-module.ts';
import { totpUri } from '../../mfa/totp.ts';
import { type FactorMethod, type MethodDeps, type MethodHost, resultOf, samePage } from './method.ts';

const qrcode = lazyModule((require) => require('qrcode') as typeof QRCode);

/** A phone's browser: the set-up page then offers the link that opens the authenticator app on this device first. */
function onPhone(host: MethodHost): boolean {
  return host.ctx.get('sec-ch-ua-mobile') === '?1' || /\b(Mobi|Android|iPhone|iPad|iPod)\b/.test(host.ctx.get('user-agent'));
}

/**
 * An authenticator app (TOTP, RFC 6238), and the lent hardware tokens that show codes the same way.
 * The new secret stays sealed in the host's state until one valid code confirms it, so leaving
 * halfway stores nothing.
 */
export function authenticatorApp(deps: MethodDeps): FactorMethod {
  async function pendingSecret(host: MethodHost): Promise<string> {
    const state = await host.state();
    if (typeof state.pendingTotp === 'string') return state.pendingTotp;
    const { sealed } = deps.mfa.pendingTotp();
    await host.saveState({ pendingTotp: sealed });
    return sealed;
  }

  return {
    id: 'app',
    kinds: ['totp', 'token'],
    nameKey: 'mfa.totp_label',
    descriptionKey: 'mfa.app_description',
    available: () => true,
    setup: {
      view: 'mfa-setup-app',
      async page(host) {
        const secret = deps.mfa.unseal(await pendingSecret(host));
        const account = (await deps.accounts.findById(host.accountId))!;
        const uri = totpUri(secret, account.common_id, deps.config.issuerName);
        const svg = await qrcode().toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
        return {
          uri,
          phoneFirst: onPhone(host),
          qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`,
          secret: secret.match(/.{1,4}/g)!.join(' '),
          action: host.url('totp'),
        };
      },
      actions: {
        async totp(host) {
          const state = await host.state();
          if (typeof state.pendingTotp !== 'string') return samePage;
          const outcome = await deps.mfa.confirmTotp(host.accountId, state.pendingTotp, host.body.code, host.t('mfa.totp_label'));
          if (outcome.ok) await host.saveState({ pendingTotp: null });
          return resultOf(host, outcome);
        },
      },
    },
    challenge: {
      view: 'mfa-challenge-app',
      page: async (host) => ({ action: host.url('totp') }),
      actions: {
        totp: async (host) => resultOf(host, await deps.mfa.verifyTotp(host.accountId, host.body.code)),
      },
    },
  };
}
