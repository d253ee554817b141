import type { Clock } from '../shared/clock.ts';
import { DomainError } from '../shared/errors.ts';
import { academicYear, dateIn } from './academic-year.ts';
import type { EducationStore } from './education.store.ts';

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Results of the yearly information-security education, per account and academic year. */
export class EducationService {
  readonly #store: EducationStore;
  readonly #clock: Clock;
  readonly #start: { month: number; day: number };
  readonly #timeZone: string;

  constructor(deps: { store: EducationStore; clock: Clock; academicYearStart: { month: number; day: number }; timeZone: string }) {
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#start = deps.academicYearStart;
    this.#timeZone = deps.timeZone;
  }

  currentYear(): number {
    return academicYear(this.#clock.now(), this.#start, this.#timeZone);
  }

  /** The date this year's education was passed, or undefined ("not taken"). */
  passedThisYear(accountId: string): Promise<string | undefined> {
    return this.#store.passedOn(accountId, this.currentYear());
  }

  /** Records a pass; the date defaults to today and must fall in the academic year given. */
  async record(accountId: string, year: unknown, passedOn?: unknown): Promise<{ year: number; passedOn: string }> {
    const academic = Number(year);
    if (!Number.isInteger(academic) || academic < 2000 || academic > 2100) throw new DomainError('invalid_year', 'the academic year must be a year such as 2026');
    const today = dateIn(this.#clock.now(), this.#timeZone);
    const date = passedOn === undefined || passedOn === null || passedOn === '' ? `${today.year}-${String(today.month).padStart(2, '0')}-${String(today.day).padStart(2, '0')}` : String(passedOn);
    const match = DATE.exec(date);
    const parsed = match ? new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]))) : undefined;
    if (!match || !parsed || parsed.getUTCMonth() !== Number(match[2]) - 1 || parsed.getUTCDate() !== Number(match[3])) {
      throw new DomainError('invalid_date', 'the date must be a real date written YYYY-MM-DD');
    }
    if (academicYear(new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]), 12)), this.#start, 'UTC') !== academic) {
      throw new DomainError('date_outside_year', `${date} is not in academic year ${academic}`);
    }
    await this.#store.record(accountId, academic, date);
    return { year: academic, passedOn: date };
  }
}
