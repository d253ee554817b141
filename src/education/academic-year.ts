import { wallClock } from '../shared/time-zone.ts';

/** The calendar date (year, month, day) of an instant in a time zone. */
export function dateIn(instant: Date, timeZone: string): { year: number; month: number; day: number } {
  const { year, month, day } = wallClock(instant, timeZone);
  return { year, month, day };
}

/** The academic year an instant falls in: the year in which that academic year began. */
export function academicYear(instant: Date, start: { month: number; day: number }, timeZone: string): number {
  const { year, month, day } = dateIn(instant, timeZone);
  const beforeStart = month < start.month || (month === start.month && day < start.day);
  return beforeStart ? year - 1 : year;
}
