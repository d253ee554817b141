import { describe, expect, test } from '@jest/globals';
import { formatDate, formatDateTime } from '../../src/i18n/i18n.ts';
import { isoInZone, isTimeZone, startOfDay, wallClock } from '../../src/shared/time-zone.ts';
import { loadConfig } from '../../src/config/config.ts';
import { when } from '../../src/cli/output.ts';

// Dates as people read them (issue 14 point 7): one unambiguous form per language, in the
// university's time zone, whatever the zone of the process running the code.

const TOKYO = 'Asia/Tokyo';

describe('formatDate and formatDateTime', () => {
  test('English and Japanese forms, in the university zone', () => {
    const at = new Date('2026-12-04T10:08:00Z');
    expect(formatDate('en', at, TOKYO)).toBe('4 Dec 2026');
    expect(formatDate('ja', at, TOKYO)).toBe('2026年12月4日');
    expect(formatDateTime('en', at, TOKYO)).toBe('4 Dec 2026, 19:08');
    expect(formatDateTime('ja', at, TOKYO)).toBe('2026年12月4日 19:08');
  });

  test('an instant late in the UTC day is the next day in Tokyo (across the date line)', () => {
    const at = '2027-03-30T15:00:00.000Z';
    expect(formatDate('en', at, TOKYO)).toBe('31 Mar 2027');
    expect(formatDateTime('ja', at, TOKYO)).toBe('2027年3月31日 00:00');
    // The same instant is still 30 March in UTC and in Honolulu, and New Year differs by a year.
    expect(formatDateTime('en', at, 'UTC')).toBe('30 Mar 2027, 15:00');
    expect(formatDateTime('en', at, 'Pacific/Honolulu')).toBe('30 Mar 2027, 05:00');
    expect(formatDate('en', '2026-12-31T15:30:00Z', TOKYO)).toBe('1 Jan 2027');
    expect(formatDate('ja', '2026-12-31T15:30:00Z', 'America/New_York')).toBe('2026年12月31日');
  });

  test('every English month is its three-letter abbreviation (no "Sept"), and the 24-hour clock starts at 00', () => {
    const months = Array.from({ length: 12 }, (_, m) => formatDate('en', Date.UTC(2026, m, 15, 3), TOKYO).split(' ')[1]);
    expect(months).toEqual(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']);
    expect(formatDateTime('en', '2026-09-01T15:05:00Z', TOKYO)).toBe('2 Sep 2026, 00:05');
  });

  test('an offset as the zone gives the same text (the CLI reads instants written with the offset)', () => {
    expect(formatDateTime('en', '2027-03-31T00:00:00+09:00', '+09:00')).toBe(formatDateTime('en', '2027-03-30T15:00:00Z', TOKYO));
  });
});

describe('time-zone arithmetic', () => {
  test('startOfDay is 00:00 of that day in the zone, across daylight saving too', () => {
    expect(startOfDay('2027-03-31', TOKYO).toISOString()).toBe('2027-03-30T15:00:00.000Z');
    expect(startOfDay('2027-03-31', 'UTC').toISOString()).toBe('2027-03-31T00:00:00.000Z');
    // New York: EST (-05:00) before 14 March 2027, EDT (-04:00) after.
    expect(startOfDay('2027-03-01', 'America/New_York').toISOString()).toBe('2027-03-01T05:00:00.000Z');
    expect(startOfDay('2027-07-01', 'America/New_York').toISOString()).toBe('2027-07-01T04:00:00.000Z');
    expect(Number.isNaN(startOfDay('2027-02-30', TOKYO).getTime())).toBe(true);
  });

  test('isoInZone writes the zone offset, exact to the millisecond', () => {
    expect(isoInZone('2027-03-30T15:00:00.000Z', TOKYO)).toBe('2027-03-31T00:00:00+09:00');
    expect(isoInZone('2026-12-04T10:08:03.250Z', TOKYO)).toBe('2026-12-04T19:08:03.250+09:00');
    expect(isoInZone('2027-07-01T04:00:00Z', 'America/New_York')).toBe('2027-07-01T00:00:00-04:00');
    expect(isoInZone('2027-01-01T00:00:00Z', 'Asia/Kolkata')).toBe('2027-01-01T05:30:00+05:30');
    for (const iso of ['2027-03-30T15:00:00.000Z', '2026-12-04T10:08:03.250Z']) expect(new Date(isoInZone(iso, TOKYO)).toISOString()).toBe(iso);
  });

  test('wallClock reads the zone offset at that instant', () => {
    expect(wallClock('2027-01-15T12:00:00Z', 'America/New_York').offsetMinutes).toBe(-300);
    expect(wallClock('2027-07-15T12:00:00Z', 'America/New_York').offsetMinutes).toBe(-240);
    expect(isTimeZone('Asia/Tokyo')).toBe(true);
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
  });
});

describe('AKAMON_TIME_ZONE', () => {
  const env = (extra: Record<string, string>) => ({ AKAMON_DATA_DIR: '/tmp/akamon-dates-test', ...extra });

  test('defaults to Asia/Tokyo, and a bare date setting starts at 00:00 in the configured zone', () => {
    expect(loadConfig(env({})).timeZone).toBe(TOKYO);
    const config = loadConfig(env({ AKAMON_TIME_ZONE: 'America/New_York', AKAMON_MFA_REQUIRED_FROM: '2027-07-01' }));
    expect(config.mfaRollout.requiredFrom?.toISOString()).toBe('2027-07-01T04:00:00.000Z');
  });

  test('a name that is not an IANA zone stops the start with a ConfigError saying what to give', () => {
    for (const bad of ['Tokyo', 'Asia/Tokio', '+09:00', 'JST-9']) {
      expect(() => loadConfig(env({ AKAMON_TIME_ZONE: bad }))).toThrow(/AKAMON_TIME_ZONE must be an IANA time zone name such as Asia\/Tokyo/);
    }
  });
});

describe('the CLI reads instants in the offset the admin API wrote', () => {
  test('a revocation day, a moment, a calendar day, and anything else as it is', () => {
    expect(when('2027-03-31T00:00:00+09:00', 'en')).toBe('31 Mar 2027');
    expect(when('2027-03-31T00:00:00+09:00', 'ja')).toBe('2027年3月31日');
    expect(when('2026-12-04T19:08:03.250+09:00', 'en')).toBe('4 Dec 2026, 19:08');
    expect(when('2026-12-04T19:08:03+09:00', 'ja')).toBe('2026年12月4日 19:08');
    expect(when('2027-07-01T09:30:00-04:00', 'en')).toBe('1 Jul 2027, 09:30');
    expect(when('2026-06-01', 'en')).toBe('1 Jun 2026');
    expect(when('graduation', 'en')).toBe('graduation');
    expect(when(null, 'en')).toBe('-');
  });
});
