import type { Context } from 'koa';
import type { Renderer } from '../http/renderer.ts';
import { localName } from '../client/client-settings.ts';

/**
 * The HTTP-POST binding (bindings 3.5): a page whose form the browser submits to the SP by itself
 * (a button where scripts do not run), carrying the signed message and the RelayState.
 */
export function postToSp(
  ctx: Context,
  renderer: Renderer,
  message: { action: string; service: { name: string; nameJa: string | null }; param: 'SAMLRequest' | 'SAMLResponse'; xml: string; relayState: string | null },
): void {
  ctx.set('Cache-Control', 'no-store');
  renderer.page(ctx, 'saml-post', 'saml.post_title', {
    // No language switch: it would lead back to a one-time address (the form is posted at once anyway).
    langUrl: null,
    action: message.action,
    serviceName: localName(ctx.state.locale, message.service.name, message.service.nameJa),
    fields: [[message.param, Buffer.from(message.xml).toString('base64')], ...(message.relayState !== null ? [['RelayState', message.relayState]] : [])],
  });
}
