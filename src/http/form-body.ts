import type { Context, Next } from 'koa';
import { FORM_BODY_MAX_BYTES } from '../config/defaults.ts';

const FORM_LIMIT = FORM_BODY_MAX_BYTES;

/**
 * Admits a urlencoded form of 16 KB at most, already read, parsed and checked for bad characters
 * by the input guard. Anything else, and any field sent twice (arrays), is refused with
 * 400/413/415 instead of reaching a handler that expects plain strings.
 */
export async function formBody(ctx: Context, next: Next): Promise<void> {
  if (!ctx.is('application/x-www-form-urlencoded')) ctx.throw(415, 'a form is expected');
  const raw = ctx.request.rawBody;
  if (raw === undefined) ctx.throw(415, 'a form must be sent as application/x-www-form-urlencoded');
  if (Buffer.byteLength(raw) > FORM_LIMIT) ctx.throw(413, 'the form is too large');
  const body = ctx.request.body as Record<string, unknown>;
  if (Object.values(body).some((v) => typeof v !== 'string')) ctx.throw(400, 'each field may appear once');
  await next();
}
