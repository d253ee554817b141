import type Router from '@koa/router';
import type { Context } from 'koa';
import { IMPORT_COLUMNS, type ImportKind } from '../account/account-import.ts';
import type { Problem } from '../account/account-input.ts';
import { CSV_MAX_BYTES, IMPORT_MAX_ROWS } from '../config/defaults.ts';
import { formBody } from '../http/form-body.ts';
import { en, type MessageKey } from '../i18n/en.ts';
import { formatDateTime, translator, type Translate } from '../i18n/i18n.ts';
import { renderLetters } from '../letter/letter.ts';
import type { ImportJob, ImportRowResult } from '../operator/import-job.ts';
import { may, type Principal } from '../operator/permissions.ts';
import { csvLine } from '../shared/csv-table.ts';
import { DomainError } from '../shared/errors.ts';
import { textFault } from '../shared/text.ts';
import type { ConsoleDeps, ConsoleOperator, ConsoleSession } from './console-session.ts';

/** The multipart envelope around the file (boundaries, the other fields) on top of the file's own limit. */
const ENVELOPE_BYTES = 64 * 1024;
/** How often a running import's page reloads itself (a meta refresh: the console's CSP allows no script). */
const REFRESH_SECONDS = 2;

const PAGE = '/console/import';
const KINDS: readonly ImportKind[] = ['accounts', 'revocations'];
const PERMISSION = { accounts: 'account.create', revocations: 'account.status' } as const;
const isKind = (value: unknown): value is ImportKind => KINDS.includes(value as ImportKind);

/** Why an upload could not be read; the form is shown again with the message. */
class Refused extends Error {
  readonly key: MessageKey;
  readonly vars: Record<string, string | number>;
  readonly status: number;

  constructor(key: MessageKey, vars: Record<string, string | number> = {}, status = 400) {
    super(key);
    this.key = key;
    this.vars = vars;
    this.status = status;
  }
}

/** The body of a multipart form, read up to the file limit and parsed by the platform's own reader. */
async function readUpload(ctx: Context): Promise<FormData> {
  if (!ctx.is('multipart/form-data')) throw new Refused('import.file_missing', {}, 415);
  const limit = CSV_MAX_BYTES + ENVELOPE_BYTES;
  const tooLarge = () => new Refused('import.file_csv_too_large', { megabytes: CSV_MAX_BYTES / 1024 / 1024 }, 413);
  if ((ctx.request.length ?? 0) > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > limit) throw tooLarge();
    chunks.push(chunk);
  }
  try {
    return await new Response(Buffer.concat(chunks, received), { headers: { 'content-type': ctx.get('content-type') } }).formData();
  } catch {
    throw new Refused('import.file_missing');
  }
}

/** A problem as the page says it: the column it is about, and the text for its code. */
function problemText(t: Translate, problem: Problem): string {
  const key = `import.problem_${problem.code}`;
  const text = Object.hasOwn(en, key) ? t(key as MessageKey) : t('import.problem_other', { code: problem.code });
  return problem.field ? `${problem.field}: ${text}` : text;
}

/** The downloadable report: every problem in full, and cells a spreadsheet would run as formulas neutralised. */
function reportCsv(rows: readonly ImportRowResult[]): string {
  const lines = [csvLine(['row', 'common_id', 'outcome', 'problems'])];
  for (const row of rows) {
    const problems = row.errors.map((p) => `${p.field ? `${p.field}: ` : ''}${p.message} (${p.code})`).join('; ');
    lines.push(csvLine([String(row.line), row.commonId ?? '', row.outcome, problems], { neutralize: true }));
  }
  return `${lines.join('\r\n')}\r\n`;
}

function download(ctx: Context, type: string, name: string, body: string) {
  ctx.type = type;
  ctx.set('Content-Disposition', `attachment; filename="${name}"`);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

/**
 * /console/import: uploading a CSV of accounts or revocations (the CLI's columns), the job's
 * progress (the page reloads itself while it runs), its report row by row, the report as CSV, and
 * the initial passwords once, as letters or CSV. The work is ImportJobs' (src/operator/import-job.ts),
 * which acts through HelpDesk for the signed-in operator.
 */
export function importRoutes(router: Router, deps: ConsoleDeps, session: ConsoleSession): void {
  const jobs = deps.importJobs;
  const { config } = deps;
  const kindsOf = (principal: Principal) => KINDS.filter((kind) => may(principal, PERMISSION[kind]));

  /** The form, with a refusal's message on the field it is about and the kind of import chosen (`kind`). */
  async function formPage(ctx: Context, who: ConsoleOperator, error?: Refused, kind?: ImportKind) {
    const t = translator(ctx.state.locale);
    const recent = await jobs.recent(who.principal);
    session.page(
      ctx,
      who,
      'console-import',
      'import.title',
      {
        error: error ? t(error.key, error.vars) : undefined,
        invalid: error && (error.key === 'import.not_allowed' ? 'kind' : 'file'),
        kind,
        pageUrl: PAGE,
        kinds: kindsOf(who.principal).map((kind) => ({
          kind,
          label: t(`import.kind_${kind}`),
          columns: t('import.columns', { kind: t(`import.kind_${kind}`), columns: [...IMPORT_COLUMNS[kind].required, ...IMPORT_COLUMNS[kind].optional].join(', ') }),
        })),
        hint: t('import.file_hint', { megabytes: CSV_MAX_BYTES / 1024 / 1024, rows: IMPORT_MAX_ROWS }),
        recent: recent.map((job) => summary(t, ctx, job)),
      },
      error?.status ?? 200,
    );
  }

  function summary(t: Translate, ctx: Context, job: ImportJob) {
    const counts = { processed: job.processed, total: job.total, failed: job.failed };
    return {
      url: `/console/import/${job.id}`,
      state: job.state,
      of: t('import.job_of', { kind: t(`import.kind_${job.kind}`), file: job.fileName, time: formatDateTime(ctx.state.locale, job.createdAt, config.timeZone) }),
      status: t(`import.state_${job.state}`, counts),
    };
  }

  /** The operator's own job, or the plain 404 (another operator's job is as absent as an unknown one). */
  async function ownJob(ctx: Context, who: ConsoleOperator): Promise<ImportJob | undefined> {
    const job = await jobs.job(who.principal, String(ctx.params.id));
    if (!job) session.notFound(ctx);
    return job;
  }

  router.get(PAGE, async (ctx) => {
    const who = await session.operator(ctx);
    if (!who) return;
    if (!kindsOf(who.principal).length) return session.notFound(ctx);
    // The kind chosen before a step-up brought the operator here again (a browser never fills in a file).
    const { kind } = await session.draft(ctx, who);
    await formPage(ctx, who, undefined, isKind(kind) ? kind : undefined);
  });

  router.post(PAGE, async (ctx) => {
    // The session first: a stranger's upload is not read.
    const signedIn = await session.operator(ctx, PAGE);
    if (!signedIn) return;
    let form: FormData;
    try {
      form = await readUpload(ctx);
    } catch (error) {
      if (error instanceof Refused) return formPage(ctx, signedIn, error);
      throw error;
    }
    ctx.request.body = { _csrf: form.get('_csrf') };
    const who = await session.posted(ctx, PAGE);
    if (!who) return;
    const kind = form.get('kind');
    // Creating or revoking many accounts at once is a dangerous action: a key shown a few minutes ago.
    if (!(await session.fresh(ctx, who, PAGE, isKind(kind) ? { kind } : undefined))) return;
    const file = form.get('file');
    if (!isKind(kind) || !kindsOf(who.principal).includes(kind)) return formPage(ctx, who, new Refused('import.not_allowed', {}, 403));
    if (!(file instanceof File) || file.size === 0) return formPage(ctx, who, new Refused('import.file_missing'), kind);
    // The name is shown on the job's page and kept in the audit: the text rules of every other name.
    if (textFault(file.name)) return formPage(ctx, who, new Refused('import.file_name_invalid'), kind);
    try {
      const id = await jobs.start(who.principal, kind, file.name || 'upload.csv', new Uint8Array(await file.arrayBuffer()), CSV_MAX_BYTES);
      ctx.status = 303;
      ctx.redirect(`/console/import/${id}`);
    } catch (error) {
      if (error instanceof DomainError && error.code.startsWith('csv_'))
        return formPage(ctx, who, new Refused(`import.file_${error.code}` as MessageKey, error.details as Record<string, string | number>), kind);
      throw error;
    }
  });

  router.get('/console/import/:id', async (ctx) => {
    const who = await session.operator(ctx);
    if (!who) return;
    const job = await ownJob(ctx, who);
    if (!job) return;
    const t = translator(ctx.state.locale);
    const rows = await jobs.rows(job);
    session.page(ctx, who, 'console-import-job', 'import.job_title', {
      job: { ...summary(t, ctx, job), id: job.id, processed: job.processed, total: job.total, kind: job.kind },
      refreshSeconds: job.state === 'running' ? REFRESH_SECONDS : undefined,
      rows: rows.map((row) => ({ line: row.line, commonId: row.commonId ?? '', outcome: row.outcome, label: t(`import.outcome_${row.outcome}`), problems: row.errors.map((p) => problemText(t, p)) })),
      passwords: job.kind !== 'accounts' || job.processed === job.failed ? undefined : job.secretsWaiting ? 'waiting' : job.state === 'running' ? 'later' : 'gone',
    });
  });

  router.get('/console/import/:id/report.csv', async (ctx) => {
    const who = await session.operator(ctx);
    if (!who) return;
    const job = await ownJob(ctx, who);
    if (!job) return;
    download(ctx, 'text/csv; charset=utf-8', `import-${job.id.slice(0, 8)}-report.csv`, `\uFEFF${reportCsv(await jobs.rows(job))}`);
  });

  // Once only: the passwords are wiped as they are handed out (ImportJobs.takeSecrets).
  router.post('/console/import/:id/passwords', formBody, async (ctx) => {
    const who = await session.posted(ctx, `/console/import/${ctx.params.id}`);
    if (!who) return;
    if (!(await session.fresh(ctx, who, `/console/import/${ctx.params.id}`))) return;
    const job = await ownJob(ctx, who);
    if (!job) return;
    const secrets = await jobs.takeSecrets(who.principal, job);
    if (!secrets) {
      ctx.status = 303;
      return ctx.redirect(`/console/import/${job.id}`);
    }
    const name = `import-${job.id.slice(0, 8)}-passwords`;
    if ((ctx.request.body as Record<string, string>).format === 'csv') {
      const lines = [csvLine(['common_id', 'name', 'initial_password']), ...secrets.map((s) => csvLine([s.commonId, s.name, s.password], { neutralize: true }))];
      return download(ctx, 'text/csv; charset=utf-8', `${name}.csv`, `\uFEFF${lines.join('\r\n')}\r\n`);
    }
    const html = await renderLetters(secrets.map((s) => ({ ...s, serverUrl: config.issuer, timeZone: config.timeZone })));
    download(ctx, 'text/html; charset=utf-8', `${name}.html`, html);
  });
}
