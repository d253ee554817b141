import type { TokenView } from '../../mfa/token.service.ts';
import { COMMON_ID_PATTERN } from '../../account/common-id.ts';
import { ApiError } from '../admin-client.ts';
import type { Command, Group, RunContext } from '../command.ts';
import { readCsvRows } from '../csv-file.ts';
import { err, out, printJson, printTable } from '../output.ts';

const enc = encodeURIComponent;
const TOKEN_COLUMNS = { required: ['serial', 'secret', 'digits', 'period'], optional: [] };

const serialArgument = (ctx: RunContext): string => {
  const serial = ctx.positionals[0]!;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(serial)) ctx.options.fail(`"${serial}" is not a token serial`);
  return serial;
};

const importTokens: Command = {
  name: 'import',
  synopsis: 'FILE.csv',
  summary: 'Load OATH TOTP hardware tokens from a CSV file (serial,secret,digits,period).',
  positionals: ['FILE.csv'],
  notes: [
    'The secret is base32; digits is 6 or 8; period is 30 or 60. Secrets are stored encrypted and never shown again.',
    'Refused rows are reported on stderr as "row N: reason"; exit status 1 if any row was refused.',
    'With --json it prints {"loaded": [serials], "errors": [{row, serial, error}]}.',
  ].join('\n'),
  async run(ctx) {
    const rows = await readCsvRows(ctx.positionals[0]!, ctx.command, TOKEN_COLUMNS);
    const api = await ctx.connect();
    const loaded: string[] = [];
    const errors: Array<{ row: number; serial: string | null; error: string }> = [];
    for (const row of rows) {
      try {
        const token = await api.post<TokenView>('/tokens', { serial: row.fields.serial, secret: row.fields.secret, digits: Number(row.fields.digits), period: Number(row.fields.period) });
        loaded.push(token.serial);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        errors.push({ row: row.line, serial: row.fields.serial || null, error: error.message });
        err(`row ${row.line}: ${error.message}`);
      }
    }
    if (ctx.json) printJson({ loaded, errors });
    else out(`Loaded ${loaded.length} of ${rows.length} token(s).`);
    if (errors.length) process.exitCode = 1;
  },
};

const list: Command = {
  name: 'list',
  synopsis: '',
  summary: 'List the loaded tokens and who has each.',
  async run(ctx) {
    const { tokens } = await (await ctx.connect()).get<{ tokens: TokenView[] }>('/tokens');
    ctx.result(tokens, () =>
      printTable(
        ['SERIAL', 'DIGITS', 'PERIOD', 'LENT TO', 'SINCE'],
        tokens.map((t) => [t.serial, String(t.digits), String(t.period), t.assignedTo ?? '-', t.assignedAt ?? '-']),
        'no tokens',
      ),
    );
  },
};

const assign: Command = {
  name: 'assign',
  synopsis: 'SERIAL --to ID',
  summary: 'Lend a token to an account; its codes then work like an authenticator app.',
  optionHelp: ['  --to ID    the Common ID of the person receiving the token'],
  positionals: ['SERIAL'],
  options: { to: { type: 'string' } },
  async run(ctx) {
    const serial = serialArgument(ctx);
    const to = ctx.options.required('to');
    if (!COMMON_ID_PATTERN.test(to)) ctx.options.fail(`the Common ID must be exactly 10 digits, got "${to}"`);
    const result = await (await ctx.connect()).post<{ serial: string; assignedTo: string }>(`/tokens/${enc(serial)}/assign`, { commonId: to });
    ctx.result(result, () => out(`Token ${result.serial} is lent to ${result.assignedTo}.`));
  },
};

const unassign: Command = {
  name: 'unassign',
  synopsis: 'SERIAL',
  summary: 'Take a token back; it stops working for the account that had it.',
  positionals: ['SERIAL'],
  async run(ctx) {
    const serial = serialArgument(ctx);
    const result = await (await ctx.connect()).post<{ serial: string }>(`/tokens/${enc(serial)}/unassign`);
    ctx.result(result, () => out(`Token ${result.serial} is back and free to lend.`));
  },
};

export const tokenGroup: Group = {
  name: 'token',
  summary: 'Manage lent hardware tokens: import, list, assign, unassign.',
  commands: [importTokens, list, assign, unassign],
};
