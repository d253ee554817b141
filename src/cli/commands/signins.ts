import { COMMON_ID_PATTERN } from '../../account/common-id.ts';
import type { Command } from '../command.ts';
import { out, when } from '../output.ts';

interface SigninJson {
  at: string;
  commonId: string | null;
  clientId: string | null;
  ip: string | null;
  userAgent: string | null;
  result: string;
  reason: string | null;
}

export const signinsCommand: Command = {
  name: 'signins',
  synopsis: '[--account ID] [--since DATE] [--limit N]',
  summary: 'Show recent sign-in attempts, newest first.',
  optionHelp: [
    '  --account ID     only the attempts for this Common ID',
    '  --since DATE     only attempts from this time on (2026-04-01 or 2026-04-01T09:00:00Z)',
    '  --limit N        at most N attempts (1 to 10000, default 100)',
  ],
  notes: 'Each line: time, Common ID, client, IP address, result, reason. With --json: an array of attempts.',
  options: { account: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' } },
  async run(ctx) {
    const o = ctx.options;
    const account = o.string('account');
    if (account !== undefined && !COMMON_ID_PATTERN.test(account)) o.fail('--account must be a Common ID: exactly 10 digits');
    const query = { account, since: o.date('since'), limit: o.integer('limit', 1, 10000) };
    const { signins } = await (await ctx.connect()).get<{ signins: SigninJson[] }>('/signins', query);
    ctx.result(signins, () => {
      if (!signins.length) out('no sign-in attempts');
      for (const s of signins) out([when(s.at), s.commonId, s.clientId, s.ip, s.result, s.reason].map((v) => v || '-').join('  '));
    });
  },
};
