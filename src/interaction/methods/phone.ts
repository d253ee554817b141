import { sha256 } from '../../crypto/tokens.ts';
import { maskPhone, normalizePhone, type PhoneTarget } from '../../mfa/phone.service.ts';
import { type FactorMethod, type MethodDeps, type MethodHost, resultOf, samePage, sendRefused } from './method.ts';

/** Country calling codes offered first (Japan's neighbours and the countries most students come from); "+" numbers work for any. */
const COUNTRIES: ReadonlyArray<readonly [region: string, code: string]> = [
  ['JP', '81'],
  ['CN', '86'],
  ['KR', '82'],
  ['TW', '886'],
  ['HK', '852'],
  ['US', '1'],
  ['GB', '44'],
  ['FR', '33'],
  ['DE', '49'],
  ['IN', '91'],
  ['ID', '62'],
  ['VN', '84'],
  ['TH', '66'],
  ['PH', '63'],
  ['SG', '65'],
  ['MY', '60'],
  ['AU', '61'],
];

function countryOptions(host: MethodHost, selected: string) {
  const names = new Intl.DisplayNames([host.ctx.state.locale], { type: 'region' });
  const options = COUNTRIES.map(([region, code]) => ({ code, label: `${names.of(region)} (+${code})`, selected: code === selected }));
  return options.some((o) => o.selected) ? options : [{ code: selected, label: `+${selected}`, selected: true }, ...options];
}

/**
 * A phone: a 6-digit code by SMS or voice call. Set-up sends a code to the number given (with its
 * country code) and saves the phone when that code comes back; each code proves the number it went to.
 */
export function phone(deps: MethodDeps): FactorMethod {
  const enrolPurpose = (host: MethodHost, target: string) => `${host.flow}:phone:${sha256(target).slice(0, 22)}`;
  /** The calling code the form chose (digits only), else the university's default. */
  const countryOf = (host: MethodHost) => (typeof host.body.country === 'string' && /^\d{1,3}$/.test(host.body.country) ? host.body.country : deps.config.phoneDefaultCountry);
  // The code is spaced out to be read (or heard) digit by digit; an SMS ends with the origin-bound
  // line ("@host #code") that iOS and Android's WebOTP read to offer the code on this site only.
  const originLine = `@${new URL(deps.config.issuer).hostname}`;
  const text = (host: MethodHost, target: PhoneTarget) => (code: string) => {
    const spoken = host.t('mfa.phone_text', { code: code.split('').join(' '), service: deps.config.issuerName });
    return target.channel === 'sms' ? `${spoken}\n\n${originLine} #${code}` : spoken;
  };

  return {
    id: 'phone',
    kinds: ['phone'],
    nameKey: 'mfa.phone_name',
    descriptionKey: 'mfa.phone_description',
    available: () => deps.mfa.phone.available,
    setup: {
      view: 'mfa-setup-phone',
      async page(host) {
        const state = await host.state();
        const pending = typeof state.pendingPhone === 'string' ? deps.mfa.phone.unseal(state.pendingPhone) : undefined;
        return {
          sendAction: host.url('phone_send'),
          countries: countryOptions(host, countryOf(host)),
          number: typeof host.body.phone === 'string' ? host.body.phone.slice(0, 40) : '',
          pending: pending ? { masked: maskPhone(pending.phone), channel: pending.channel, confirmAction: host.url('phone_confirm'), changeAction: host.url('phone_change') } : null,
        };
      },
      actions: {
        async phone_send(host) {
          const number = normalizePhone(host.body.phone, countryOf(host));
          if (!number) return { ok: false, error: host.t('mfa.phone_invalid'), status: 400 };
          const target: PhoneTarget = { phone: number, channel: host.body.channel === 'voice' ? 'voice' : 'sms' };
          const sent = await deps.mfa.phone.send(host.accountId, enrolPurpose(host, number), target, text(host, target));
          if (!sent.ok) return sendRefused(host, sent);
          await host.saveState({ pendingPhone: deps.mfa.phone.seal(target) });
          return samePage;
        },
        async phone_confirm(host) {
          const state = await host.state();
          if (typeof state.pendingPhone !== 'string') return samePage;
          const target = deps.mfa.phone.unseal(state.pendingPhone);
          const label = `${host.t(target.channel === 'sms' ? 'mfa.phone_sms' : 'mfa.phone_voice')} ${maskPhone(target.phone)}`;
          const outcome = await deps.mfa.confirmPhone(host.accountId, enrolPurpose(host, target.phone), target, host.body.code, label);
          if (outcome.ok) await host.saveState({ pendingPhone: null });
          return resultOf(host, outcome, 'mfa.wrong_phone_code');
        },
        async phone_change(host) {
          await host.saveState({ pendingPhone: null });
          return samePage;
        },
      },
    },
    challenge: {
      view: 'mfa-challenge-phone',
      async page(host, factors) {
        const state = await host.state();
        const sentTo = factors.find((f) => f.id === state.phoneFactor);
        return {
          phones: factors.map((f) => ({ id: f.id, label: f.label, sendAction: host.url('phone_send') })),
          sent: sentTo ? { label: sentTo.label, action: host.url('phone') } : null,
        };
      },
      actions: {
        async phone_send(host) {
          // The factor id comes from the form, so it must be one of this account's phones.
          const factor = (await deps.mfa.factors(host.accountId)).find((f) => f.id === host.body.factor && f.kind === 'phone');
          if (!factor) return { ok: false, error: host.t('mfa.code_expired'), status: 400 };
          const target = deps.mfa.phone.target(factor);
          const sent = await deps.mfa.phone.send(host.accountId, `${host.flow}:${factor.id}`, target, text(host, target));
          if (!sent.ok) return sendRefused(host, sent);
          await host.saveState({ phoneFactor: factor.id });
          return samePage;
        },
        async phone(host) {
          const state = await host.state();
          if (typeof state.phoneFactor !== 'string') return resultOf(host, { ok: false, reason: 'expired' });
          return resultOf(host, await deps.mfa.verifyPhone(host.accountId, state.phoneFactor, `${host.flow}:${state.phoneFactor}`, host.body.code), 'mfa.wrong_phone_code');
        },
      },
    },
  };
}
