import type { Command, Group } from '../command.ts';
import { out } from '../output.ts';

const rotate: Command = {
  name: 'rotate',
  synopsis: '',
  summary: 'Make a new signing key current; the previous key stays published so tokens it signed still verify.',
  notes: 'With --json it prints {"kids": [...]}: the key IDs now published.',
  async run(ctx) {
    const result = await (await ctx.connect()).post<{ kids: string[] }>('/keys/rotate');
    ctx.result(result, () => out(`Signing keys rotated. Published key IDs: ${result.kids.join(', ')}`));
  },
};

export const keysGroup: Group = {
  name: 'keys',
  summary: 'Manage the token signing keys.',
  commands: [rotate],
};
