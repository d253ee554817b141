import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { errors, type InteractionResults } from 'oidc-provider';
import type Provider from 'oidc-provider';
import { translator } from '../i18n/i18n.ts';
import type { MessageKey } from '../i18n/en.ts';
import type { CsrfGuard } from '../http/csrf.ts';
import { formBody } from '../http/form-body.ts';
import { requestLocale } from '../http/middleware.ts';
import { drawnAway, type PageData, type Renderer } from '../http/renderer.ts';
import type { InteractionStateStore } from './interaction-state.store.ts';
import { oneAtATime } from './one-at-a-time.ts';
import type { InteractionDetails, Step, StepHandler, StepRequest } from './step.ts';
import { clientDisplayName } from '../client/client-settings.ts';

export interface InteractionRouterDeps {
  provider: () => Provider;
  steps: Step[];
  renderer: Renderer;
  csrf: CsrfGuard;
  state: InteractionStateStore;
  stateTtlSeconds: number;
}

/** Leaves the interaction: the relying party gets access_denied. Allowed from every step. */
const abort: StepHandler = (request) => request.finish({ error: 'access_denied', error_description: 'the person left the sign-in' });

/** A step that, shown in the authorization request's answer, would move on instead of drawing its page. */
class NotDrawnInPlace extends Error {}

/**
 * GET /interaction/:uid shows the pending step; POST /interaction/:uid/:action runs one of its
 * actions. Every request is checked against the interaction cookie and the pending prompt, so a
 * step cannot be skipped or replayed from another tab's URL. `drawFirstStep` wraps the provider:
 * see there.
 */
export function interactionPages(deps: InteractionRouterDeps): { router: Router; drawFirstStep: Middleware } {
  const router = new Router();
  const byName = new Map(deps.steps.map((s) => [s.name, s]));

  async function load(ctx: Context): Promise<InteractionDetails | undefined> {
    try {
      const details = await deps.provider().interactionDetails(ctx.req, ctx.res);
      return details.uid === ctx.params.uid ? details : undefined;
    } catch (error) {
      if (error instanceof errors.SessionNotFound) return undefined;
      throw error;
    }
  }

  /**
   * The state as a POST's turn holds it (one-at-a-time.ts): read once as the turn began, and what
   * the action saves is written as the turn ends, in the same statement that returns the turn. No
   * other POST runs meanwhile, so nothing is missed; what a failed action saved before it failed is
   * kept, as what it did stands (one-at-a-time.ts).
   * A swap still goes to the database: it is the guard against a GET that uses the same value.
   */
  function heldState(uid: string, held: Record<string, unknown>, leave: (patch: Record<string, unknown>) => void) {
    const current = { ...held };
    return {
      state: async () => ({ ...current }),
      saveState: async (patch: Record<string, unknown>) => {
        Object.assign(current, patch);
        leave(patch);
      },
      swapState: async (expected: Record<string, unknown>, patch: Record<string, unknown>) => {
        const swapped = await deps.state.transition(uid, expected, patch, deps.stateTtlSeconds);
        if (swapped) Object.assign(current, patch);
        return swapped;
      },
    };
  }

  /**
   * `turn` is the POST's (see above); without one (a GET) the state is written at once, and `read`
   * (the state as read with the interaction) answers until the step writes it. `inPlace`: the
   * authorization request's answer, which can only draw a page (its browser has no interaction
   * cookie yet to finish with).
   */
  function request(
    ctx: Context,
    details: InteractionDetails,
    turn?: { state: Record<string, unknown>; leave: (patch: Record<string, unknown>) => void },
    read?: Record<string, unknown>,
    inPlace = false,
  ): StepRequest {
    const provider = deps.provider();
    const held = turn && heldState(details.uid, turn.state, turn.leave);
    let known = read;
    const clientId = String(details.params.client_id);
    let clientName: Promise<string> | undefined;
    const base = `/interaction/${details.uid}`;
    return {
      ctx,
      provider,
      details,
      uid: details.uid,
      // The page's language is settled before this (both routes set it first): one name per page.
      clientName: () => {
        clientName ??= provider.Client.find(clientId).then((client) => (client ? clientDisplayName(client, ctx.state.locale) : clientId));
        return clientName;
      },
      body: (ctx.request.body ?? {}) as Record<string, unknown>,
      query: inPlace ? {} : ctx.query,
      t: translator(ctx.state.locale),
      state: held ? held.state : async () => (known ? { ...known } : deps.state.get(details.uid)),
      saveState: held
        ? held.saveState
        : (data) => {
            known = undefined;
            return deps.state.merge(details.uid, data, deps.stateTtlSeconds);
          },
      swapState: held
        ? held.swapState
        : (expected, patch) => {
            known = undefined;
            return deps.state.transition(details.uid, expected, patch, deps.stateTtlSeconds);
          },
      // A page answering a POST (a refused password, the password page after the identifier, the
      // factor's after the password) is the interaction's page: its language switch leads back there,
      // and the browser's address becomes it (pageUrl), so a reload or a return through the history
      // shows the pending step afresh instead of sending the form again.
      render: (view: string, titleKey: MessageKey, data?: PageData, status?: number) => deps.renderer.page(ctx, view, titleKey, { pageUrl: base, ...data }, status),
      async finish(result: InteractionResults, merge = false) {
        if (inPlace) throw new NotDrawnInPlace();
        const url = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
        turn?.leave({ completed: true });
        ctx.status = 303;
        ctx.redirect(url);
      },
      reload(query?: string) {
        if (inPlace) throw new NotDrawnInPlace();
        ctx.status = 303;
        ctx.redirect(query ? `${base}?${query}` : base);
      },
      url: (action?: string) => (action ? `${base}/${action}` : base),
    };
  }

  function expired(ctx: Context): void {
    deps.renderer.error(ctx, 'error.expired', 400);
  }

  router.get('/interaction/:uid', async (ctx) => {
    // The state and the interaction in one statement; the provider's read of the interaction (load) is then answered from it.
    const state = await deps.state.getWithInteraction(ctx.params.uid);
    const details = await load(ctx);
    const step = details && byName.get(details.prompt.name);
    if (!details || !step) return expired(ctx);
    // ui_locales of the authorization request decides the language of every step page.
    ctx.state.locale = requestLocale(ctx, details.params.ui_locales);
    await step.show(request(ctx, details, undefined, state));
  });

  router.post('/interaction/:uid/:action', formBody, async (ctx) => {
    const body = ctx.request.body as Record<string, unknown>;
    if (!deps.csrf.valid(ctx, body._csrf)) return deps.renderer.error(ctx, 'error.csrf', 403);
    const { uid } = ctx.params;
    // Only the browser this interaction belongs to takes its turn: the provider's interaction cookie
    // (signed, as createProvider sets its short cookies) must name it, as the provider's own lookup checks.
    if (ctx.cookies.get(deps.provider().cookieName('interaction'), { signed: true }) !== uid) return expired(ctx);
    // One submission at a time per interaction, and none once one has completed it: a form sent
    // twice completes the step once (one password change, one audit record), and the later
    // copies are sent where the first one went, as a double click expects. The turn is taken in
    // the statement that reads the interaction (no older than the turn's wait); an interaction
    // that is gone takes no turn and reads as expired below.
    const ran = await oneAtATime(
      deps.state,
      uid,
      deps.stateTtlSeconds,
      async (state, leave) => {
        const details = await load(ctx);
        const step = details && byName.get(details.prompt.name);
        if (!details || !step) return expired(ctx);
        ctx.state.locale = requestLocale(ctx, details.params.ui_locales);
        const action = ctx.params.action === 'abort' ? abort : Object.hasOwn(step.actions, ctx.params.action) ? step.actions[ctx.params.action] : undefined;
        // An action of another step (say, the password form after the step moved on) is stale.
        if (!action) return expired(ctx);
        if (state.completed === true) {
          ctx.status = 303;
          return ctx.redirect(details.returnTo);
        }
        await action(request(ctx, details, { state, leave }));
      },
      (token, holdSeconds) => deps.state.takeInteractionTurn(uid, token, holdSeconds),
    );
    if (!ran) deps.renderer.error(ctx, 'error.conflict', 409);
  });

  /**
   * A new sign-in's first step, drawn in the authorization request's own answer: the provider
   * answers 303 to /interaction/:uid, whose GET would only draw that page. One request and one
   * round trip fewer per sign-in. The page moves the browser's address to the interaction's
   * (page-url.js), so a reload, the history and the language switch ask for /interaction/:uid as
   * before, and the page's forms post there with the interaction cookie this answer sets. Whatever
   * cannot be drawn here (a step that moves on when shown, a fault) leaves the provider's redirect.
   */
  const drawFirstStep: Middleware = async (ctx, next) => {
    await next();
    const details = ctx.oidc?.entities?.Interaction as InteractionDetails | undefined;
    const location = `/interaction/${details?.uid}`;
    // A GET only: a HEAD (a link checker) gets the redirect and runs no step.
    if (ctx.method !== 'GET' || ctx.oidc?.route !== 'authorization' || ctx.status !== 303 || !details || ctx.response.get('Location') !== location) return;
    const step = byName.get(details.prompt.name);
    if (!step) return;
    try {
      ctx.state.locale = requestLocale(ctx, details.params.ui_locales);
      drawnAway(ctx);
      // Nothing can have written the state of an interaction made by this request: it has none.
      await step.show(request(ctx, details, undefined, {}, true));
      ctx.remove('Location');
    } catch (error) {
      if (!(error instanceof NotDrawnInPlace)) ctx.state.log.warn({ err: error }, 'the first step is left to its own request');
      ctx.status = 303;
      ctx.redirect(location);
    }
  };

  return { router, drawFirstStep };
}
