import { describe, expect, test } from '@jest/globals';
import { accountEmails, inTrustedDomain } from '../../src/account/reset-address.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

const TRUSTED = { trustedEmailDomains: ['u-tokyo.ac.jp'] };
const CONFIRMED = new Date('2026-04-01T00:00:00Z');

function account(fields: Partial<{ email: string | null; email_verified: boolean; recovery_email: string | null; recovery_email_verified_at: Date | null }>) {
  return { email: null, email_verified: true, recovery_email: null, recovery_email_verified_at: null, ...fields };
}

describe('accountEmails: where a password reset by email goes', () => {
  test('a confirmed recovery address comes first, even beside a trusted university address', () => {
    const emails = accountEmails(account({ email: 'hanako@g.ecc.u-tokyo.ac.jp', recovery_email: 'hanako@example.com', recovery_email_verified_at: CONFIRMED }), TRUSTED);
    expect(emails).toEqual({
      university: 'hanako@g.ecc.u-tokyo.ac.jp',
      recovery: 'hanako@example.com',
      reset: { possible: true, via: 'recovery_email', to: 'hanako@example.com' },
    });
  });

  test('without one, a verified university address in a trusted domain or below it', () => {
    expect(accountEmails(account({ email: 'taro@u-tokyo.ac.jp' }), TRUSTED).reset).toEqual({ possible: true, via: 'university_email', to: 'taro@u-tokyo.ac.jp' });
    expect(accountEmails(account({ email: 'Taro@MAIL.U-Tokyo.AC.JP' }), TRUSTED).reset).toEqual({ possible: true, via: 'university_email', to: 'Taro@MAIL.U-Tokyo.AC.JP' });
  });

  test('a university address outside the trusted domains, or one the university does not vouch for, is not used', () => {
    const outside = accountEmails(account({ email: 'taro@gmail.com' }), TRUSTED);
    expect(outside).toEqual({ university: 'taro@gmail.com', recovery: null, reset: { possible: false, via: null, reason: 'university_email_untrusted' } });
    // A look-alike that merely ends with the same letters is another domain.
    expect(accountEmails(account({ email: 'taro@evil-u-tokyo.ac.jp' }), TRUSTED).reset).toMatchObject({ possible: false, reason: 'university_email_untrusted' });
    expect(accountEmails(account({ email: 'taro@u-tokyo.ac.jp.example.com' }), TRUSTED).reset).toMatchObject({ possible: false, reason: 'university_email_untrusted' });
    expect(accountEmails(account({ email: 'taro@u-tokyo.ac.jp', email_verified: false }), TRUSTED).reset).toEqual({ possible: false, via: null, reason: 'university_email_unverified' });
    // With no trusted domains no operator-set address counts.
    expect(accountEmails(account({ email: 'taro@u-tokyo.ac.jp' }), { trustedEmailDomains: [] }).reset).toMatchObject({ possible: false, reason: 'university_email_untrusted' });
  });

  test('an unconfirmed recovery address is neither shown nor used; no address at all says so', () => {
    const unconfirmed = accountEmails(account({ recovery_email: 'typed@example.com' }), TRUSTED);
    expect(unconfirmed).toEqual({ university: null, recovery: null, reset: { possible: false, via: null, reason: 'no_email' } });
    expect(accountEmails(account({ email: '' }), TRUSTED).university).toBeNull();
  });

  test('inTrustedDomain reads the domain after the last @', () => {
    expect(inTrustedDomain('"a@b"@u-tokyo.ac.jp', ['u-tokyo.ac.jp'])).toBe(true);
    expect(inTrustedDomain('a@u-tokyo.ac.jp@gmail.com', ['u-tokyo.ac.jp'])).toBe(false);
  });
});

describe('AKAMON_TRUSTED_EMAIL_DOMAINS', () => {
  const domains = (env: Record<string, string>) => loadConfig(env).trustedEmailDomains;

  test('by default the realm suffix without its first label', () => {
    expect(domains({ AKAMON_REALM_SUFFIX: 'utac.u-tokyo.ac.jp' })).toEqual(['u-tokyo.ac.jp']);
    expect(domains({ AKAMON_REALM_SUFFIX: '@sso.example.ac.jp' })).toEqual(['example.ac.jp']);
    // Whatever the realm's own default is, the domains follow the realm the config ends up with.
    const config = loadConfig({});
    expect(config.trustedEmailDomains).toEqual(config.realmSuffix?.includes('.') ? [config.realmSuffix.slice(config.realmSuffix.indexOf('.') + 1)] : []);
  });

  test('no default where the realm would leave a single label (a whole country or registry)', () => {
    expect(domains({ AKAMON_REALM_SUFFIX: 'example.jp' })).toEqual([]);
    expect(domains({ AKAMON_REALM_SUFFIX: 'localhost' })).toEqual([]);
  });

  test('a list, lower-cased, with spaces and a leading @ forgiven; none or empty trusts nothing', () => {
    expect(domains({ AKAMON_TRUSTED_EMAIL_DOMAINS: ' U-Tokyo.ac.jp, @example.ac.jp ,u-tokyo.ac.jp', AKAMON_REALM_SUFFIX: 'utac.u-tokyo.ac.jp' })).toEqual(['u-tokyo.ac.jp', 'example.ac.jp']);
    expect(domains({ AKAMON_TRUSTED_EMAIL_DOMAINS: 'none', AKAMON_REALM_SUFFIX: 'utac.u-tokyo.ac.jp' })).toEqual([]);
    expect(domains({ AKAMON_TRUSTED_EMAIL_DOMAINS: '', AKAMON_REALM_SUFFIX: 'utac.u-tokyo.ac.jp' })).toEqual([]);
  });

  test.each([['jp'], ['u-tokyo.ac.jp, none'], ['*.u-tokyo.ac.jp'], ['user@u-tokyo.ac.jp'], ['u_tokyo.ac.jp'], ['-bad.ac.jp'], ['u-tokyo..ac.jp']])(
    'refuses %p at start-up with the setting named',
    (raw) => {
      expect(() => loadConfig({ AKAMON_TRUSTED_EMAIL_DOMAINS: raw })).toThrow(ConfigError);
      expect(() => loadConfig({ AKAMON_TRUSTED_EMAIL_DOMAINS: raw })).toThrow(/^AKAMON_TRUSTED_EMAIL_DOMAINS: ".+" is not a domain such as u-tokyo\.ac\.jp/);
    },
  );
});
