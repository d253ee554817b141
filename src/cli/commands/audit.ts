import { COMMON_ID_PATTERN } from '../../account/common-id.ts';
import type { Command } from '../command.ts';
import { out, when } from '../output.ts';

interface AuditJson {
  at: string;
  actor: string;
  action: string;
  commonId: string | null;
  details: Record<string, unknown>;
}

export const auditCommand: Command = {
  name: 'audit',
  synopsis: '[--account ID] [--limit N]',
  summary: 'Show recent changes to accounts, clients, tokens and keys (who did what), newest first.',
  optionHelp: ['  --account ID     only the changes to this Common ID', '  --limit N        at most N events (1 to 10000, default 100)'],
  notes: 'Each line: time, actor, action, Common ID, details. With --json: an array of events.',
  options: { account: { type: 'string' }, limit: { type: 'string' } },
  async run(ctx) {
    const o = ctx.options;
    const account = o.string('account');
    if (account !== undefined && !COMMON_ID_PATTERN.test(account)) o.fail('--account must be a Common ID: exactly 10 digits');
    const { events } = await (await ctx.connect()).get<{ events: AuditJson[] }>('/audit', { account, limit: o.integer('limit', 1, 10000) });
    ctx.result(events, () => {
      if (!events.length) out('no audit events');
      for (const e of events) out([when(e.at), e.actor, e.action, e.commonId ?? '-', JSON.stringify(e.details)].join('  '));
    });
  },
};
