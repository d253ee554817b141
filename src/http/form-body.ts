import { bodyParser } from '@koa/bodyparser';
import type { Context, Next } from 'koa';

const parse = bodyParser({ enableTypes: ['form'], formLimit: '16kb', encoding: 'utf-8' });

/**
 * Parses a urlencoded form (16 KB at most). Anything else, and any field sent twice (arrays),
 * is refused with 400/413/415 instead of reaching a handler that expects plain strings.
 */
export async function formBody(ctx: Context, next: Next): Promise<void> {
  if (!ctx.is('application/x-www-form-urlencoded')) ctx.throw(415, 'a form is expected');
  await parse(ctx, async () => {
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    if (Object.values(body).some((v) => typeof v !== 'string')) ctx.throw(400, 'each field may appear once');
    await next();
  });
}
