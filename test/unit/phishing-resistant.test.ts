import { describe, expect, test } from '@jest/globals';
import { ACR_MFA, ACR_PHISHING_RESISTANT, mfaDemanded, mfaFresh, phishingResistant } from '../../src/mfa/assurance.ts';
import { factorsFor, isPhishingResistant } from '../../src/mfa/mfa.service.ts';

// ACR_PHISHING_RESISTANT (asked for by the console): only a security key or passkey satisfies it,
// and a sign-in that asks for it is offered the account's keys alone, when it has any.

describe('a phishing-resistant factor', () => {
  test('is a security key or passkey (hwk, swk), never a code', () => {
    expect(phishingResistant(['pwd', 'hwk'])).toBe(true);
    expect(phishingResistant(['pwd', 'swk'])).toBe(true);
    for (const amr of [['pwd'], ['pwd', 'otp'], ['pwd', 'sms'], ['idv'], undefined]) expect(phishingResistant(amr)).toBe(false);
  });

  test('asking for it demands MFA, and a session that showed only a code is not fresh for it', () => {
    expect(mfaDemanded({ accountRequires: false, clientRequires: false, requestedAcr: [ACR_PHISHING_RESISTANT] })).toBe(true);
    expect(mfaDemanded({ accountRequires: false, clientRequires: false, requestedAcr: [] })).toBe(false);
    const now = 1_000_000;
    expect(mfaFresh({ amr: ['pwd', 'otp'], loginTs: now }, null, now)).toBe(true);
    expect(mfaFresh({ amr: ['pwd', 'otp'], loginTs: now }, null, now, true)).toBe(false);
    expect(mfaFresh({ amr: ['pwd', 'hwk'], loginTs: now - 100 }, 60, now, true)).toBe(false);
    expect(mfaFresh({ amr: ['pwd', 'hwk'], loginTs: now - 10 }, 60, now, true)).toBe(true);
    expect(ACR_PHISHING_RESISTANT).not.toBe(ACR_MFA);
  });

  test('the factors offered: only the keys when they are asked for and the account has one; otherwise all', () => {
    const app = { kind: 'totp' as const };
    const key = { kind: 'webauthn' as const };
    const phone = { kind: 'phone' as const };
    expect(isPhishingResistant(key)).toBe(true);
    expect(isPhishingResistant(app)).toBe(false);
    expect(factorsFor([app, key, phone], true)).toEqual([key]);
    expect(factorsFor([app, key, phone], false)).toEqual([app, key, phone]);
    expect(factorsFor([app, phone], true)).toEqual([app, phone]);
  });
});
