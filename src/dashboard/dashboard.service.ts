import type { FactorKind } from '../db/schema.ts';
import type { EducationService } from '../education/education.service.ts';
import { authorize, type Principal } from '../operator/permissions.ts';
import type { Clock } from '../shared/clock.ts';
import { isoInZone, startOfDay, wallClock } from '../shared/time-zone.ts';
import type { AccountGroupCount, DashboardStore } from './dashboard.store.ts';

/** The figures of the ICT office's dashboard, each also a CSV at /console/dashboard/<figure>.csv. */
export const FIGURES = ['adoption', 'adoption_history', 'methods', 'education', 'access_denials', 'signin_failures', 'revocations'] as const;
export type Figure = (typeof FIGURES)[number];

/** The window of the sign-in figures, in calendar days of the university's time zone (today included). */
export const RECENT_DAYS = 30;
/** How far back the adoption chart goes. */
export const HISTORY_DAYS = 365;
/** How far ahead the revocation figure looks, in calendar months (this one included). */
export const REVOCATION_MONTHS = 12;
/**
 * How long one count of the accounts serves the page and its CSVs. It is one scan of every account
 * (a few seconds at a million), so a page, its downloads and a second operator within the minute
 * share it; requests during the count wait for the same one.
 */
export const ACCOUNT_COUNT_SECONDS = 60;

/** The methods people know, from the factor kinds behind them (a lent hardware token is `token`). */
export const METHODS = [
  { method: 'authenticator_app', kind: 'totp' },
  { method: 'passkey', kind: 'webauthn' },
  { method: 'phone', kind: 'phone' },
  { method: 'hardware_token', kind: 'token' },
] as const satisfies ReadonlyArray<{ method: string; kind: FactorKind }>;
export type Method = (typeof METHODS)[number]['method'];

export interface GroupShare {
  /** The affiliation or top-level department ('' for accounts without a department); '' overall. */
  value: string;
  active: number;
  /** Accounts with MFA (adoption) or with this year's education passed (education). */
  count: number;
  /** count / active, 0 without accounts. */
  share: number;
}

export interface GroupShares {
  overall: GroupShare;
  byAffiliation: GroupShare[];
  byDepartment: GroupShare[];
}

export interface HistoryPoint extends GroupShare {
  day: string;
  dimension: AccountGroupCount['dimension'];
}

export interface DashboardFigures {
  /** When the figures were counted, in the university's time zone. */
  countedAt: string;
  timeZone: string;
  adoption: GroupShares;
  adoption_history: HistoryPoint[];
  methods: Array<{ method: Method; accounts: number }>;
  education: GroupShares & { academicYear: number };
  access_denials: Array<{ clientId: string | null; clientName: string | null; clientNameJa: string | null; rule: string; accounts: number; attempts: number }>;
  signin_failures: Array<{ reason: string; count: number }>;
  revocations: Array<{ month: string; accounts: number }>;
}

/**
 * The ICT office's view of the whole university: MFA adoption (now and day by day), methods in
 * use, this year's education, access-rule refusals, sign-in failures and coming revocations.
 * Every read takes the operator first and needs 'dashboard.read'; the figures are university-wide.
 * The daily snapshot is the periodic job's (takeSnapshot), not a person's.
 */
export class DashboardService {
  readonly #store: DashboardStore;
  readonly #education: EducationService;
  readonly #clock: Clock;
  readonly #timeZone: string;
  #counted: { year: number; at: number; groups: Promise<AccountGroupCount[]> } | undefined;

  constructor(deps: { store: DashboardStore; education: EducationService; clock: Clock; timeZone: string }) {
    this.#store = deps.store;
    this.#education = deps.education;
    this.#clock = deps.clock;
    this.#timeZone = deps.timeZone;
  }

  async figures(principal: Principal): Promise<DashboardFigures> {
    authorize(principal, 'dashboard.read');
    const academicYear = this.#education.currentYear();
    const [groups, history, denials, failures, revocations] = await Promise.all([
      this.#accountGroups(academicYear),
      this.#history(),
      this.#store.accessDenials(this.#recentSince()),
      this.#store.failuresByReason(this.#recentSince()),
      this.#revocations(),
    ]);
    return {
      countedAt: isoInZone(this.#clock.now(), this.#timeZone),
      timeZone: this.#timeZone,
      adoption: shares(groups, (g) => g.withMfa),
      adoption_history: history,
      methods: methods(groups),
      education: { academicYear, ...shares(groups, (g) => g.passed) },
      access_denials: denials,
      signin_failures: failures,
      revocations,
    };
  }

  /** One figure (for its CSV), counting only what it needs. */
  async figure<F extends Figure>(principal: Principal, figure: F): Promise<DashboardFigures[F]> {
    authorize(principal, 'dashboard.read');
    const load: { [K in Figure]: () => Promise<DashboardFigures[K]> } = {
      adoption: async () => shares(await this.#accountGroups(this.#education.currentYear()), (g) => g.withMfa),
      adoption_history: () => this.#history(),
      methods: async () => methods(await this.#accountGroups(this.#education.currentYear())),
      education: async () => {
        const academicYear = this.#education.currentYear();
        return { academicYear, ...shares(await this.#accountGroups(academicYear), (g) => g.passed) };
      },
      access_denials: () => this.#store.accessDenials(this.#recentSince()),
      signin_failures: () => this.#store.failuresByReason(this.#recentSince()),
      revocations: () => this.#revocations(),
    };
    return load[figure]();
  }

  /**
   * Today's adoption snapshot, if no node has taken it yet (the periodic job calls this on every
   * tick; after the first write of the day it costs one key lookup). Two nodes that both find it
   * missing both count, and the primary key keeps the second one's rows out. Returns rows written.
   */
  async takeSnapshot(): Promise<number> {
    const day = this.#today();
    if (await this.#store.hasSnapshot(day)) return 0;
    // Counted afresh: the day's row is the day's figure, not one a page counted a minute ago.
    this.#counted = undefined;
    const groups = await this.#accountGroups(this.#education.currentYear());
    return this.#store.writeSnapshot(day, groups);
  }

  #accountGroups(year: number): Promise<AccountGroupCount[]> {
    const now = this.#clock.now().getTime();
    const counted = this.#counted;
    if (counted && counted.year === year && now - counted.at < ACCOUNT_COUNT_SECONDS * 1000) return counted.groups;
    const groups = this.#store.accountGroups(year);
    this.#counted = { year, at: now, groups };
    // A failed count (the database busy or away) is not kept: the next request counts again.
    groups.catch(() => {
      if (this.#counted?.groups === groups) this.#counted = undefined;
    });
    return groups;
  }

  #today(): string {
    return dayString(wallClock(this.#clock.now(), this.#timeZone));
  }

  /** The start of the day RECENT_DAYS - 1 days before today: today and the 29 days before it. */
  #recentSince(): Date {
    return startOfDay(daysBefore(this.#today(), RECENT_DAYS - 1), this.#timeZone);
  }

  async #history(): Promise<HistoryPoint[]> {
    const rows = await this.#store.snapshots(daysBefore(this.#today(), HISTORY_DAYS - 1));
    return rows.map((r) => ({ day: r.day, dimension: r.dimension, value: r.value, active: r.active, count: r.withMfa, share: ratio(r.withMfa, r.active) }));
  }

  /** Scheduled revocations by calendar month of the university's zone, this month and the next eleven. */
  async #revocations(): Promise<DashboardFigures['revocations']> {
    const now = wallClock(this.#clock.now(), this.#timeZone);
    const months = Array.from({ length: REVOCATION_MONTHS + 1 }, (_, i) => {
      const first = new Date(Date.UTC(now.year, now.month - 1 + i, 1));
      return first.toISOString().slice(0, 7);
    });
    const counts = await this.#store.revocationsBetween(months.map((month) => startOfDay(`${month}-01`, this.#timeZone)));
    return months.slice(0, -1).map((month, i) => ({ month, accounts: counts[i] ?? 0 }));
  }
}

function ratio(count: number, active: number): number {
  return active ? Math.round((count / active) * 10_000) / 10_000 : 0;
}

/** Active accounts per method, from the "all" group's count of each factor kind. */
function methods(groups: readonly AccountGroupCount[]): DashboardFigures['methods'] {
  const all = groups.find((g) => g.dimension === 'all');
  return METHODS.map(({ method, kind }) => ({ method, accounts: all?.byKind[kind] ?? 0 }));
}

function shares(groups: readonly AccountGroupCount[], count: (g: AccountGroupCount) => number): GroupShares {
  const share = (g: AccountGroupCount): GroupShare => ({ value: g.value, active: g.active, count: count(g), share: ratio(count(g), g.active) });
  const all = groups.find((g) => g.dimension === 'all');
  return {
    // No active account at all: the grouping set () still gives one row, but be safe.
    overall: all ? share(all) : { value: '', active: 0, count: 0, share: 0 },
    byAffiliation: groups.filter((g) => g.dimension === 'affiliation').map(share),
    byDepartment: groups.filter((g) => g.dimension === 'department').map(share),
  };
}

function dayString(d: { year: number; month: number; day: number }): string {
  return `${String(d.year).padStart(4, '0')}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
}

/** The calendar day `n` days before `day` (YYYY-MM-DD). */
function daysBefore(day: string, n: number): string {
  const [year, month, date] = day.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(year, month - 1, date - n)).toISOString().slice(0, 10);
}
