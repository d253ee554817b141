import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import type { Renderer } from '../http/renderer.ts';
import type { InteractionStateStore } from '../interaction/interaction-state.store.ts';
import { oneAtATime } from '../interaction/one-at-a-time.ts';
import type { AnonymousCap } from '../throttle/anonymous-cap.ts';
import { addressKey, type LoginThrottle } from '../throttle/login-throttle.ts';
import { FLOW_KINDS, type FlowKind, type FlowKindSettings } from './flow-kinds.ts';
import { siteCookieName, siteCookieOptions } from '../http/site-cookie.ts';

export interface FlowStoreDeps {
  config: { readonly production: boolean };
  renderer: Renderer;
  state: InteractionStateStore;
  throttle: LoginThrottle;
  /** Every flow started is stored for a caller who may not be signed in: counted like every anonymous record. */
  anonymousCap: AnonymousCap;
}

/** A flow id as made by `open`: 16 random bytes, base64url. A cookie holding anything else carries no flow. */
const FLOW_ID = /^[A-Za-z0-9_-]{22}$/;

export type Admission = { readonly ok: true } | { readonly ok: false; readonly waitSeconds: number };
export type Started = { readonly ok: true; readonly id: string } | { readonly ok: false; readonly waitSeconds: number };

export interface CurrentFlow<F> {
  readonly id: string;
  readonly flow: F;
}

/**
 * A multi-step flow of one browser (a password reset, an identity verification), kept server-side
 * in the InteractionStateStore under `<kind>:<id>`, its random id in a signed, httpOnly cookie. So
 * nothing a step relies on (an account found, a code sent, a challenge) travels in a form, the flow
 * belongs to the browser that started it, and a cookie that was not signed here, or a flow past its
 * lifetime, is no flow at all. `F` is the shape of the flow's state: stored as JSON, so its fields
 * are JSON values, and a field is cleared with null (undefined is dropped, leaving the old value).
 */
export class FlowStore<F extends object> {
  readonly #kind: FlowKind;
  readonly #settings: FlowKindSettings;
  readonly #deps: FlowStoreDeps;
  readonly #cookie: string;

  constructor(kind: FlowKind, deps: FlowStoreDeps) {
    this.#kind = kind;
    this.#settings = FLOW_KINDS[kind];
    this.#deps = deps;
    this.#cookie = siteCookieName(this.#settings.cookie, deps.config.production);
  }

  #key(id: string): string {
    return `${this.#kind}:${id}`;
  }

  /**
   * Counts one start of this kind from the caller's address against the kind's limit. Refused, the
   * answer carries Retry-After and the caller says how long to wait.
   */
  async admit(ctx: Context): Promise<Admission> {
    const limit = await this.#deps.throttle.countUse([{ key: addressKey(ctx.ip, this.#kind), rule: this.#settings.startLimit }]);
    if (!limit.blocked && limit.waitSeconds === 0) return { ok: true };
    ctx.set('Retry-After', String(limit.waitSeconds));
    return { ok: false, waitSeconds: limit.waitSeconds };
  }

  /**
   * A new flow for this browser holding `initial`, replacing any flow of this kind it had. Counted
   * against the anonymous cap first (over it, AnonymousCapError or AnonymousCeilingError: 429 or
   * 503 from the error map). Not counted against the start limit: for a flow whose costly start
   * comes later (the reset's captcha page comes before the mail), which calls `admit` there.
   */
  async open(ctx: Context, initial: F): Promise<string> {
    await this.#deps.anonymousCap.take(ctx.ip);
    const id = randomBytes(16).toString('base64url');
    await this.save(id, initial);
    const { production } = this.#deps.config;
    ctx.cookies.set(this.#cookie, id, siteCookieOptions(production, { maxAgeSeconds: this.#settings.lifetimeSeconds }));
    return id;
  }

  /** `admit`, then `open`: a flow that costs from its first step. */
  async start(ctx: Context, initial: F): Promise<Started> {
    const admission = await this.admit(ctx);
    if (!admission.ok) return admission;
    return { ok: true, id: await this.open(ctx, initial) };
  }

  /** Merges `patch` into the flow's state, which then lives a full lifetime again. */
  save(id: string, patch: Partial<F>): Promise<void> {
    return this.#deps.state.merge(this.#key(id), patch as Record<string, unknown>, this.#settings.lifetimeSeconds);
  }

  /**
   * Runs `work` with this browser's flow, one request at a time on any node (see oneAtATime), so
   * each stage is passed once however often its form is sent: a code is mailed once, an upstream
   * answer redeemed once, a new password set once. Without a flow (no cookie, a cookie not signed
   * here, a flow expired) `work` gets undefined. When another request holds the flow too long,
   * the answer is 409 and `work` does not run.
   */
  async withFlow(ctx: Context, work: (current: CurrentFlow<F> | undefined) => Promise<unknown>): Promise<void> {
    const id = ctx.cookies.get(this.#cookie, { signed: true });
    if (!id || !FLOW_ID.test(id)) {
      await work(undefined);
      return;
    }
    // A stored flow always has fields (`open` stores its initial state); an empty state is none.
    const ran = await oneAtATime(this.#deps.state, this.#key(id), this.#settings.lifetimeSeconds, (state) => work(Object.keys(state).length > 0 ? { id, flow: state as F } : undefined));
    if (!ran) this.#deps.renderer.error(ctx, 'error.conflict', 409);
  }
}
