/** The calendar date (year, month, day) of an instant in a time zone. */
export function dateIn(instant: Date, timeZone: string): { year: number; month: number; day: number } {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(instant).map((p) => [p.type, p.value]));
  return { year: Number(parts.year), month: Number(parts.month), day: Number(parts.day) };
}

/** The academic year an instant falls in: the year in which that academic year began. */
export function academicYear(instant: Date, start: { month: number; day: number }, timeZone: string): number {
  const { year, month, day } = dateIn(instant, timeZone);
  const beforeStart = month < start.month || (month === start.month && day < start.day);
  return beforeStart ? year - 1 : year;
}
