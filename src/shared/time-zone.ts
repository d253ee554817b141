/**
 * Calendar arithmetic in the university's time zone (AKAMON_TIME_ZONE). Instants are stored and
 * compared as UTC; people and operators read and type them as dates and clock times of that zone,
 * whatever the zone of the server, the browser or the operator's terminal. The readable forms for a
 * language are in src/i18n/i18n.ts; this module only turns instants into wall-clock parts and back.
 */

/** The date and clock time an instant shows in a zone, and the zone's offset from UTC then. */
export interface WallClock {
  year: number;
  /** 1 to 12. */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
  /** Minutes east of UTC (+540 in Japan). */
  offsetMinutes: number;
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** One formatter per zone: building one costs far more than using it. */
function partsFormat(timeZone: string): Intl.DateTimeFormat {
  let format = formats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formats.set(timeZone, format);
  }
  return format;
}

/** True for a zone Intl knows: an IANA name such as Asia/Tokyo, or an offset such as +09:00. */
export function isTimeZone(name: string): boolean {
  try {
    partsFormat(name);
    return true;
  } catch {
    return false;
  }
}

export function wallClock(instant: Date | string | number, timeZone: string): WallClock {
  const at = new Date(instant);
  const parts = Object.fromEntries(
    partsFormat(timeZone)
      .formatToParts(at)
      .map((p) => [p.type, Number(p.value)]),
  );
  const millisecond = at.getUTCMilliseconds();
  const asUtc = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!, millisecond);
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
    millisecond,
    offsetMinutes: Math.round((asUtc - at.getTime()) / 60_000),
  };
}

/** 00:00 of a calendar day (YYYY-MM-DD) in a zone, as an instant; an invalid Date for a day that does not exist. */
export function startOfDay(day: string, timeZone: string): Date {
  const utcMidnight = new Date(`${day}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(utcMidnight.getTime()) || utcMidnight.toISOString().slice(0, 10) !== day) return new Date(Number.NaN);
  // The zone's offset at that moment, then at the moment it gives (the offset may differ across a
  // daylight-saving change between the two); Japan has no such change.
  const first = new Date(utcMidnight.getTime() - wallClock(utcMidnight, timeZone).offsetMinutes * 60_000);
  return new Date(utcMidnight.getTime() - wallClock(first, timeZone).offsetMinutes * 60_000);
}

/**
 * Whether an instant falls in the years 1 to 9999 (UTC): what ISO 8601 writes without a sign, and
 * what the database and the date formatters take (an invalid Date is not). The one range check of
 * the dates operators give.
 */
export function inCalendarRange(at: Date): boolean {
  const year = at.getUTCFullYear();
  return year >= 1 && year <= 9999;
}

const pad = (n: number, width = 2) => String(Math.abs(n)).padStart(width, '0');

/**
 * ISO 8601 with the zone's offset, as operators read it: `2027-03-31T00:00:00+09:00` rather than
 * `2027-03-30T15:00:00.000Z`. Milliseconds are kept when there are any, so the instant is exact.
 */
export function isoInZone(instant: Date | string | number, timeZone: string): string {
  const w = wallClock(instant, timeZone);
  const offset = `${w.offsetMinutes < 0 ? '-' : '+'}${pad(Math.trunc(w.offsetMinutes / 60))}:${pad(w.offsetMinutes % 60)}`;
  const fraction = w.millisecond ? `.${pad(w.millisecond, 3)}` : '';
  return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}${fraction}${offset}`;
}
