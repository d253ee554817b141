import { csvLine } from '../shared/csv-table.ts';
import type { DashboardFigures, Figure, GroupShares } from './dashboard.service.ts';

export type Cell = string | number | null;

/** A figure as rows: the columns (snake_case, the CSV's header) and one array of cells per row. */
export interface FigureTable {
  columns: string[];
  rows: Cell[][];
}

const groupRows = (shares: GroupShares, prefix: Cell[] = []): Cell[][] => [
  [...prefix, 'all', '', shares.overall.active, shares.overall.count, shares.overall.share],
  ...shares.byAffiliation.map((g) => [...prefix, 'affiliation', g.value, g.active, g.count, g.share]),
  ...shares.byDepartment.map((g) => [...prefix, 'department', g.value, g.active, g.count, g.share]),
];

/**
 * Each figure's rows, in one place: the CSV downloads and the tables under the charts are both
 * made from these, so what people read and what they download cannot differ.
 */
export function figureTable<F extends Figure>(figure: F, data: DashboardFigures[F]): FigureTable {
  const d = data as DashboardFigures[Figure];
  switch (figure) {
    case 'adoption':
      return { columns: ['dimension', 'value', 'active_accounts', 'mfa_accounts', 'share'], rows: groupRows(d as GroupShares) };
    case 'adoption_history':
      return {
        columns: ['day', 'dimension', 'value', 'active_accounts', 'mfa_accounts', 'share'],
        rows: (d as DashboardFigures['adoption_history']).map((p) => [p.day, p.dimension, p.value, p.active, p.count, p.share]),
      };
    case 'methods':
      return { columns: ['method', 'accounts'], rows: (d as DashboardFigures['methods']).map((m) => [m.method, m.accounts]) };
    case 'education': {
      const education = d as DashboardFigures['education'];
      return { columns: ['academic_year', 'dimension', 'value', 'active_accounts', 'passed_accounts', 'share'], rows: groupRows(education, [education.academicYear]) };
    }
    case 'access_denials':
      return {
        columns: ['client_id', 'client_name', 'rule', 'accounts', 'attempts'],
        rows: (d as DashboardFigures['access_denials']).map((r) => [r.clientId, r.clientName, r.rule, r.accounts, r.attempts]),
      };
    case 'signin_failures':
      return { columns: ['reason', 'count'], rows: (d as DashboardFigures['signin_failures']).map((r) => [r.reason, r.count]) };
    case 'revocations':
      return { columns: ['month', 'accounts'], rows: (d as DashboardFigures['revocations']).map((r) => [r.month, r.accounts]) };
    default:
      throw new Error(`unknown figure ${figure satisfies never}`);
  }
}

/**
 * RFC 4180 CSV with a byte-order mark: Excel in Japan opens UTF-8 as Shift_JIS without one, which
 * garbles every Japanese client name.
 */
export function toCsv(table: FigureTable): string {
  return `\uFEFF${[table.columns, ...table.rows]
    .map((row) =>
      csvLine(
        row.map((cell) => (cell === null ? '' : String(cell))),
        { neutralize: true },
      ),
    )
    .join('\r\n')}\r\n`;
}
