import { reasonWords } from './reason-words.ts';
import type Router from '@koa/router';
import type { DenialReason } from '../access/access-rules.ts';
import { localName } from '../client/client-settings.ts';
import { type DashboardFigures, FIGURES, type Figure, type GroupShare, METHODS } from '../dashboard/dashboard.service.ts';
import { figureTable, toCsv } from '../dashboard/dashboard-table.ts';
import type { MessageKey } from '../i18n/en.ts';
import { type Locale, translator } from '../i18n/i18n.ts';
import { isoInZone } from '../shared/time-zone.ts';
import { type Bar, barChart, shareLineChart } from './charts.ts';
import type { ConsoleDeps, ConsoleSession } from './console-session.ts';

interface Table {
  headers: string[];
  rows: string[][];
}

/** One chart and the same numbers as a table (folded under it). */
interface Chart {
  title: string;
  svg: string;
  table: Table;
}

interface Section {
  id: Figure;
  title: string;
  lead?: string;
  charts: Chart[];
  /** Shown instead of the charts when there is nothing to count. */
  empty?: string;
  csv: string;
}

const csvPath = (figure: Figure) => `/console/dashboard/${figure}.csv`;
const CSV_FILE = /^([a-z_]+)\.csv$/;
const isFigure = (name: string | undefined): name is Figure => FIGURES.includes(name as Figure);

/**
 * The ICT office's dashboard (/console/dashboard) and each figure as CSV (/console/dashboard/<figure>.csv).
 * The figures come from DashboardService, which refuses roles without 'dashboard.read' (403).
 */
export function dashboardRoutes(router: Router, deps: ConsoleDeps, session: ConsoleSession): void {
  router.get('/console/dashboard', async (ctx) => {
    const who = await session.operator(ctx);
    if (!who) return;
    let figures: DashboardFigures;
    try {
      figures = await deps.dashboard.figures(who.principal);
    } catch (error) {
      // 'forbidden' (a role without dashboard.read) as the console's 403 page; anything else goes on up.
      return session.error(ctx, who, error);
    }
    session.page(ctx, who, 'console-dashboard', 'dashboard.title', { sections: sections(figures, ctx.state.locale as Locale), countedAt: figures.countedAt.slice(0, 16).replace('T', ' ') });
  });

  router.get('/console/dashboard/:file', async (ctx) => {
    const who = await session.operator(ctx);
    if (!who) return;
    const figure = CSV_FILE.exec(ctx.params.file ?? '')?.[1];
    if (!isFigure(figure)) return session.notFound(ctx);
    let data: DashboardFigures[Figure];
    try {
      data = await deps.dashboard.figure(who.principal, figure);
    } catch (error) {
      // 'forbidden' (a role without dashboard.read) as the console's 403 page; anything else goes on up.
      return session.error(ctx, who, error);
    }
    const day = isoInZone(deps.clock.now(), deps.config.timeZone).slice(0, 10);
    ctx.type = 'text/csv; charset=utf-8';
    ctx.set('Content-Disposition', `attachment; filename="akamon-${figure.replaceAll('_', '-')}-${day}.csv"`);
    ctx.body = toCsv(figureTable(figure, data));
  });
}

/** The page's sections, in the order the ICT office reads them. */
function sections(f: DashboardFigures, locale: Locale): Section[] {
  const t = translator(locale);
  const number = new Intl.NumberFormat(locale);
  const percentFormat = new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 1 });
  const percent = (share: number) => percentFormat.format(share);
  const affiliation = (value: string) => t(`affiliation.${value}` as MessageKey);
  const department = (value: string) => (value === '' ? t('dashboard.no_department') : value);
  const ofActive = (g: GroupShare) => t('dashboard.share_of', { share: percent(g.share), count: number.format(g.count), active: number.format(g.active) });

  /** Shares of a group of accounts (adoption, education) as bars over 0 to 100%, with their table. */
  const shareChart = (title: string, summary: string, groups: GroupShare[], label: (value: string) => string, countHeader: string): Chart => ({
    title,
    svg: barChart(
      groups.map((g) => ({ label: label(g.value), value: g.share, text: ofActive(g) })),
      { title, summary },
      1,
    ),
    table: {
      headers: [t('dashboard.col_group'), t('dashboard.col_active'), countHeader, t('dashboard.col_share')],
      rows: groups.map((g) => [label(g.value), number.format(g.active), number.format(g.count), percent(g.share)]),
    },
  });
  /** Counts as bars (longest = the largest count), with their table. */
  const countChart = (title: string, summary: string, bars: Array<Omit<Bar, 'text'>>, headers: string[], extra: string[][] = []): Chart => ({
    title,
    svg: barChart(
      bars.map((b) => ({ ...b, text: number.format(b.value) })),
      { title, summary },
    ),
    table: { headers, rows: bars.map((b, i) => [b.label, ...(extra[i] ?? []), number.format(b.value)]) },
  });

  const adoptionSummary = t('dashboard.adoption_summary', { share: percent(f.adoption.overall.share) });
  const overall = f.adoption_history.filter((p) => p.dimension === 'all');
  const monthFormat = new Intl.DateTimeFormat(locale, { year: 'numeric', month: 'short', timeZone: 'UTC' });
  const month = (m: string) => monthFormat.format(new Date(`${m}-01T00:00:00Z`));
  const denialLabel = (d: DashboardFigures['access_denials'][number]) => localName(locale, d.clientName ?? d.clientId ?? '-', d.clientNameJa);
  const rule = (code: string) => (RULE_KEYS.has(code) ? t(`dashboard.rule_${code}` as MessageKey) : code);

  return [
    {
      id: 'adoption',
      title: t('dashboard.adoption_title'),
      lead: t('dashboard.adoption_lead', { share: ofActive(f.adoption.overall) }),
      charts: [
        shareChart(t('dashboard.by_affiliation'), adoptionSummary, f.adoption.byAffiliation, affiliation, t('dashboard.col_mfa')),
        shareChart(t('dashboard.by_department'), adoptionSummary, f.adoption.byDepartment, department, t('dashboard.col_mfa')),
      ],
      empty: f.adoption.overall.active ? undefined : t('dashboard.empty'),
      csv: csvPath('adoption'),
    },
    {
      id: 'adoption_history',
      title: t('dashboard.history_title'),
      charts: [
        {
          title: t('dashboard.history_title'),
          svg: shareLineChart(
            overall.map((p) => ({ label: p.day, value: p.share })),
            {
              title: t('dashboard.history_title'),
              summary: t('dashboard.history_summary', { from: overall[0]?.day ?? '', to: overall.at(-1)?.day ?? '', share: percent(overall.at(-1)?.share ?? 0) }),
            },
            percent,
          ),
          table: {
            headers: [t('dashboard.col_day'), t('dashboard.col_active'), t('dashboard.col_mfa'), t('dashboard.col_share')],
            rows: overall.toReversed().map((p) => [p.day, number.format(p.active), number.format(p.count), percent(p.share)]),
          },
        },
      ],
      empty: overall.length ? undefined : t('dashboard.history_empty'),
      csv: csvPath('adoption_history'),
    },
    {
      id: 'methods',
      title: t('dashboard.methods_title'),
      lead: t('dashboard.methods_lead'),
      charts: [
        countChart(
          t('dashboard.methods_title'),
          t('dashboard.methods_title'),
          f.methods.map((m) => ({ label: t(`console.kind_${METHODS.find((x) => x.method === m.method)!.kind}` as MessageKey), value: m.accounts })),
          [t('dashboard.col_method'), t('dashboard.col_accounts')],
        ),
      ],
      csv: csvPath('methods'),
    },
    {
      id: 'education',
      title: t('dashboard.education_title', { year: f.education.academicYear }),
      lead: t('dashboard.education_lead', { share: ofActive(f.education.overall) }),
      charts: [
        shareChart(t('dashboard.by_affiliation'), t('dashboard.education_summary', { share: percent(f.education.overall.share) }), f.education.byAffiliation, affiliation, t('dashboard.col_passed')),
      ],
      empty: f.education.overall.active ? undefined : t('dashboard.empty'),
      csv: csvPath('education'),
    },
    {
      id: 'access_denials',
      title: t('dashboard.denials_title'),
      lead: t('dashboard.denials_lead'),
      charts: [
        countChart(
          t('dashboard.denials_title'),
          t('dashboard.denials_title'),
          f.access_denials.map((d) => ({ label: `${denialLabel(d)}: ${rule(d.rule)}`, value: d.accounts })),
          [t('dashboard.col_system_rule'), t('dashboard.col_attempts'), t('dashboard.col_accounts')],
          f.access_denials.map((d) => [number.format(d.attempts)]),
        ),
      ],
      empty: f.access_denials.length ? undefined : t('dashboard.none_recent'),
      csv: csvPath('access_denials'),
    },
    {
      id: 'signin_failures',
      title: t('dashboard.failures_title'),
      lead: t('dashboard.failures_lead'),
      charts: [
        countChart(
          t('dashboard.failures_title'),
          t('dashboard.failures_title'),
          f.signin_failures.map((r) => ({ label: reasonWords(t, r.reason), value: r.count })),
          [t('dashboard.col_reason'), t('dashboard.col_count')],
        ),
      ],
      empty: f.signin_failures.length ? undefined : t('dashboard.none_recent'),
      csv: csvPath('signin_failures'),
    },
    {
      id: 'revocations',
      title: t('dashboard.revocations_title'),
      lead: t('dashboard.revocations_lead'),
      charts: [
        countChart(
          t('dashboard.revocations_title'),
          t('dashboard.revocations_title'),
          f.revocations.map((r) => ({ label: month(r.month), value: r.accounts })),
          [t('dashboard.col_month'), t('dashboard.col_accounts')],
        ),
      ],
      csv: csvPath('revocations'),
    },
  ];
}

/** The access rules with a short name on the dashboard (src/access/access-rules.ts DenialReason). */
const RULE_KEYS = new Set<string>([
  'account_denied',
  'status_not_allowed',
  'affiliation_not_allowed',
  'department_not_allowed',
  'education_required',
  'salvage_over',
  'mfa_required',
] satisfies DenialReason[]);
