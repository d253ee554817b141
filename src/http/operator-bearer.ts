import type { Context } from 'koa';
import type { OperatorStore } from '../operator/operator.store.ts';
import type { Principal } from '../operator/permissions.ts';

/** The answer to a request without a valid token: 401, naming the realm, in the admin API's JSON. */
export function unauthorized(ctx: Context, realm: string): void {
  ctx.status = 401;
  ctx.set('WWW-Authenticate', `Bearer realm="${realm}"`);
  ctx.body = { error: 'unauthorized', error_description: 'a valid operator token is required' };
}

/**
 * The operator an `Authorization: Bearer <API token>` header stands for, or undefined for none or
 * an unknown, revoked or expired token: the one reading of the header for every API that takes
 * operator tokens (the admin API, SCIM, /metrics), so a token is accepted alike on each.
 */
export async function bearerOperator(ctx: Context, operators: OperatorStore): Promise<Principal | undefined> {
  const header = ctx.get('authorization');
  return /^bearer /i.test(header) ? operators.verify(header.slice(7).trim()) : undefined;
}
