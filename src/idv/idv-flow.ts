import Router from '@koa/router';
import type { Context } from 'koa';
import { withRealm } from '../account/common-id.ts';
import type { Config } from '../config/config.ts';
import type { Database } from '../db/database.ts';
import type { CsrfGuard } from '../http/csrf.ts';
import { formBody } from '../http/form-body.ts';
import type { PageData } from '../http/renderer.ts';
import type { MessageKey } from '../i18n/en.ts';
import { translator } from '../i18n/i18n.ts';
import type { InteractionStateStore } from '../interaction/interaction-state.store.ts';
import { type CurrentFlow, FlowStore, type FlowStoreDeps } from '../flow/flow-store.ts';
import type { IdentityVerification, RecoveryKind } from './identity-verification.ts';
import { UpstreamUnavailableError, VerificationFailedError, type PendingCheck, type UpstreamIdp, type VerifiedIdentity } from './upstream.ts';

export type IdvPurpose = 'link' | 'recover';

interface Flow {
  purpose: IdvPurpose;
  stage: 'upstream' | 'verified' | 'done';
  check?: PendingCheck | null;
  /** link: the signed-in account; recover: the account the verification found. */
  accountId?: string;
  /** recover from a sign-in: the interaction to continue afterwards. */
  uid?: string;
  identity?: VerifiedIdentity | null;
}

/** The flow's state, its cookie, lifetime and start limit (the `idv` kind), and the anonymous cap. */
export interface IdvFlowDeps extends FlowStoreDeps {
  config: Config;
  csrf: CsrfGuard;
  /** Also where a sign-in's interaction state is, for the sign-in a recovery continues. */
  state: InteractionStateStore;
  upstream: UpstreamIdp;
  idv: IdentityVerification;
  stateTtlSeconds: number;
  /** One transaction for a verification used up and what it was used for (the link). */
  unitOfWork: Database['unitOfWork'];
}

/**
 * The browser's trip through the upstream identity provider and what follows it. A flow is kept
 * in a FlowStore of the `idv` kind, so the upstream answer is accepted only in the browser that
 * started it (with its state, nonce and PKCE verifier) and only once.
 *
 * - link (from the account home): the verified identity is handed to /account/idv/linked.
 * - recover (from the sign-in pages or /recover): the linked account is found; an active one
 *   chooses a temporary password or starting MFA over; a revoked one goes back to its sign-in,
 *   where a salvage client may let it in.
 */
export class IdvFlow {
  readonly #deps: IdvFlowDeps;
  /** Each stage is passed once (see FlowStore.withFlow): an upstream answer is redeemed once, a verified identity recovers or links once. */
  readonly #flows: FlowStore<Flow>;

  constructor(deps: IdvFlowDeps) {
    this.#deps = deps;
    this.#flows = new FlowStore<Flow>('idv', deps);
  }

  #t = (ctx: Context) => translator(ctx.state.locale);

  #page(ctx: Context, view: string, title: MessageKey, data: PageData = {}, status = 200): void {
    this.#deps.renderer.page(ctx, view, title, data, status);
  }

  /** A page that sends the person to the office, with why. */
  #office(ctx: Context, reason: MessageKey, status: number): void {
    this.#page(ctx, 'idv-office', 'idv.office_title', { reason: this.#t(ctx)(reason) }, status);
  }

  /** Sends the browser to the upstream provider (303), or answers why it cannot go now. */
  async begin(ctx: Context, purpose: IdvPurpose, bound: { accountId?: string; uid?: string } = {}): Promise<void> {
    // Verifications started from one address (a campus may share one NAT address), then growing
    // waits; counted and stored before the upstream provider is asked, so a refused start costs it nothing.
    const flow = await this.#flows.start(ctx, { purpose, stage: 'upstream', check: null, ...bound });
    if (!flow.ok) {
      return this.#deps.renderer.page(ctx, 'error', 'error.title', { message: this.#t(ctx)('idv.rate_limited', { minutes: Math.max(1, Math.ceil(flow.waitSeconds / 60)) }) }, 429);
    }
    let started: Awaited<ReturnType<UpstreamIdp['begin']>>;
    try {
      started = await this.#deps.upstream.begin(ctx.state.locale);
    } catch (error) {
      if (!(error instanceof UpstreamUnavailableError)) throw error;
      return this.#unavailable(ctx, error);
    }
    await this.#flows.save(flow.id, { check: started.check });
    ctx.status = 303;
    ctx.redirect(started.url);
  }

  #unavailable(ctx: Context, error: Error): void {
    ctx.state.log.warn({ err: { name: error.name, message: error.message } }, 'identity provider unavailable');
    ctx.set('Retry-After', '60');
    this.#deps.renderer.error(ctx, 'idv.unavailable', 503);
  }

  /**
   * Hands the verified identity of a finished link flow (once) to `use`, for the account that
   * started it; `use` gets undefined when there is none. The identity is used up in the unit of
   * work `use` runs in: a fault in it (the link's) leaves it for the reload.
   */
  async takeLink(ctx: Context, accountId: string, use: (identity: VerifiedIdentity | undefined) => Promise<void>): Promise<void> {
    await this.#flows.withFlow(ctx, async (current) => {
      const identity = current?.flow.identity;
      if (current?.flow.purpose !== 'link' || current.flow.stage !== 'verified' || current.flow.accountId !== accountId || !identity) return use(undefined);
      await this.#deps.unitOfWork(async () => {
        await this.#flows.save(current.id, { ...current.flow, stage: 'done', identity: null });
        await use(identity);
      });
    });
  }

  /**
   * What the verified person chose: the verification is used up whatever follows, in the unit of
   * work of the recovery itself (a fault there leaves it for the retry), or on its own when the
   * recovery is refused.
   */
  async #recover(ctx: Context, kind: RecoveryKind, current: CurrentFlow<Flow> | undefined): Promise<void> {
    const deps = this.#deps;
    const accountId = current?.flow.accountId;
    if (current?.flow.purpose !== 'recover' || current.flow.stage !== 'verified' || !accountId) return deps.renderer.error(ctx, 'error.expired', 400);
    const usedUp = () => this.#flows.save(current.id, { ...current.flow, stage: 'done' });
    const account = await deps.idv.accountById(accountId);
    if (account?.status !== 'active') {
      await usedUp();
      return deps.renderer.error(ctx, 'error.expired', 400);
    }
    const uid = current.flow.uid;
    const outcome = await deps.idv.recover(account, kind, async (made) => {
      await usedUp();
      // Continuing the sign-in it came from: straight to the password page of this account. In the
      // recovery's unit: a temporary password is issued only together with the way to use it.
      if (made.ok && uid) await deps.state.merge(uid, { identifier: account.common_id }, deps.stateTtlSeconds);
    });
    if (!outcome.ok) {
      ctx.set('Retry-After', String(outcome.waitSeconds));
      return deps.renderer.page(ctx, 'error', 'error.title', { message: this.#t(ctx)('idv.recover_limited', { hours: Math.max(1, Math.ceil(outcome.waitSeconds / 3600)) }) }, 429);
    }
    this.#page(ctx, 'idv-recovered', 'idv.recovered_title', {
      commonId: withRealm(account.common_id, deps.config.realmSuffix),
      temporaryPassword: outcome.temporaryPassword,
      continueUrl: uid ? `/interaction/${uid}` : '/account',
    });
  }

  routes(): Router {
    const router = new Router({ prefix: '/idv' });
    const deps = this.#deps;

    // The upstream provider's redirect back (its redirect_uri).
    router.get('/callback', (ctx) =>
      this.#flows.withFlow(ctx, async (current) => {
        if (current?.flow.stage !== 'upstream' || !current.flow.check) return deps.renderer.error(ctx, 'error.expired', 400);
        const { id, flow } = current;
        // The answer is used once, whatever it is.
        // (null, not undefined: the stored flow is merged as JSON, which drops undefined.)
        await this.#flows.save(id, { ...flow, stage: 'done', check: null });
        let identity: VerifiedIdentity;
        try {
          identity = await deps.upstream.complete(new URL(ctx.originalUrl, deps.config.issuer), flow.check!);
        } catch (error) {
          if (error instanceof UpstreamUnavailableError) return this.#unavailable(ctx, error);
          if (!(error instanceof VerificationFailedError)) throw error;
          ctx.state.log.warn({ err: { message: error.message } }, 'identity verification failed');
          return deps.renderer.error(ctx, error.cancelled ? 'idv.cancelled' : 'idv.failed', 400);
        }
        if (flow.purpose === 'link') {
          await this.#flows.save(id, { ...flow, stage: 'verified', check: null, identity });
          ctx.status = 303;
          return ctx.redirect('/account/idv/linked');
        }
        const found = await deps.idv.identify(identity);
        if (found.kind === 'unknown') return this.#office(ctx, 'idv.office_unknown', 404);
        if (found.kind === 'name_mismatch') return this.#office(ctx, 'idv.office_name', 403);
        const { account } = found;
        if (account.status === 'revoked' && flow.uid) {
          // Back to the sign-in it came from: a salvage client may let the closed account in.
          await deps.state.merge(flow.uid, { idvAccountId: account.id }, deps.stateTtlSeconds);
          ctx.status = 303;
          return ctx.redirect(`/interaction/${flow.uid}`);
        }
        if (account.status !== 'active') return this.#office(ctx, account.status === 'revoked' ? 'idv.office_revoked' : 'idv.office_suspended', 403);
        await this.#flows.save(id, { ...flow, stage: 'verified', check: null, accountId: account.id });
        this.#page(ctx, 'idv-recover', 'idv.recover_title', {
          commonId: withRealm(account.common_id, deps.config.realmSuffix),
          name: account.name,
          passwordAction: '/idv/recover/password',
          mfaAction: '/idv/recover/mfa',
        });
      }),
    );

    router.post('/recover/:kind', formBody, async (ctx) => {
      const body = ctx.request.body as Record<string, unknown>;
      if (!deps.csrf.valid(ctx, body._csrf)) return deps.renderer.error(ctx, 'error.csrf', 403);
      const kind = ctx.params.kind as RecoveryKind;
      if (kind !== 'password' && kind !== 'mfa') return deps.renderer.error(ctx, 'error.not_found', 404);
      await this.#flows.withFlow(ctx, (current) => this.#recover(ctx, kind, current));
    });

    // From /recover: "Verify your identity with your ID card" (a form of ours).
    router.post('/start', formBody, async (ctx) => {
      if (!deps.csrf.valid(ctx, (ctx.request.body as Record<string, unknown>)._csrf)) return deps.renderer.error(ctx, 'error.csrf', 403);
      await this.begin(ctx, 'recover');
    });

    return router;
  }
}
