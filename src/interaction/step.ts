import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { AccountRow } from '../account/account.store.ts';
import type { ClientRow } from '../client/client.store.ts';
import type { FactorRow } from '../mfa/mfa.store.ts';
import type { AccessDecision } from '../access/access-rules.ts';
import type { RolloutPhase } from '../mfa/rollout.ts';
import type { MessageKey } from '../i18n/en.ts';
import type { Translate } from '../i18n/i18n.ts';
import type { PageData } from '../http/renderer.ts';

export type InteractionDetails = Awaited<ReturnType<Provider['interactionDetails']>>;

/** What the checks decide on, loaded once per authorization request (checks run concurrently). */
export interface Facts {
  account: AccountRow | undefined;
  client: ClientRow | undefined;
  factors: FactorRow[];
  /** What the client's access rules say about this account (undefined without a session). */
  access: AccessDecision | undefined;
  /** Where the MFA rollout stands for this client now. */
  mfaRollout: { phase: RolloutPhase; requiredFrom: Date | undefined };
  now: Date;
}

/**
 * What a check reads of the authorization request besides the facts: the provider's context at an
 * authorization (a KoaContextWithOIDC is one), or the one the password step foresees the next step
 * with (policy.ts, `foreseen`).
 */
export interface CheckContext {
  oidc: {
    params?: Record<string, unknown>;
    /** The claims parameter, parsed. */
    claims?: unknown;
    /** The values of the prompt parameter. */
    prompts: ReadonlySet<string>;
    /** The interaction's result so far. */
    result?: Record<string, unknown>;
    session?: { amr?: string[]; loginTs?: number };
  };
}

/** One reason to show a step: a pure test over the facts, named by a snake_case reason code. */
export interface StepCheck {
  reason: string;
  description: string;
  /** The OAuth error the relying party gets with prompt=none; defaults to interaction_required. */
  error?: string;
  test(facts: Facts, ctx: CheckContext): boolean;
}

/** Everything a step's page or action handler needs about the request it serves. */
export interface StepRequest {
  ctx: Context;
  provider: Provider;
  details: InteractionDetails;
  uid: string;
  /** The client's name in the page's language, read when a page needs it: a POST that moves on does not. */
  clientName(): Promise<string>;
  body: Record<string, unknown>;
  /**
   * The query of the interaction's own address (`?account=other`, `?help=1`): empty where the
   * authorization request draws the first step, whose query is the relying party's.
   */
  query: Record<string, unknown>;
  t: Translate;
  /** Server-side state of this interaction (never hidden form fields). */
  state(): Promise<Record<string, unknown>>;
  saveState(data: Record<string, unknown>): Promise<void>;
  /** Writes `patch` only if the state still holds `expected`: of concurrent swaps exactly one wins. */
  swapState(expected: Record<string, unknown>, patch: Record<string, unknown>): Promise<boolean>;
  render(view: string, titleKey: MessageKey, data?: PageData, status?: number): void;
  /** Completes the step; the provider takes the browser on (303). */
  finish(result: InteractionResults, merge?: boolean): Promise<void>;
  /** Back to this interaction's page (303), after a POST that changed its state. */
  reload(query?: string): void;
  url(action?: string): string;
}

export type StepHandler = (request: StepRequest) => Promise<void>;

/**
 * A sign-in step: one oidc-provider prompt. Built-in prompts (login, consent) keep the library's
 * own checks and may add more; the GET route calls `show`, POST /interaction/:uid/<action> calls
 * the matching action, and only while this step is the pending prompt.
 */
export interface Step {
  name: string;
  builtIn?: boolean;
  /** Checks of a built-in prompt that a later step does better (by reason code). */
  replacesChecks?: string[];
  requestable?: boolean;
  /** A revoked account (let in for data salvage) is past changing its password or factors: never shown. */
  skipForRevoked?: boolean;
  checks: StepCheck[];
  show: StepHandler;
  actions: Record<string, StepHandler>;
}

/** Whether `check` of `step` fires for these facts: the one place that applies skipForRevoked. */
export function checkFires(step: Step, check: StepCheck, facts: Facts, ctx: CheckContext): boolean {
  return !(step.skipForRevoked && facts.account?.status === 'revoked') && check.test(facts, ctx);
}

/** Whether `step` is due for these facts (one of its checks fires), for a step that must come before it. */
export function stepDue(step: Step, facts: Facts, ctx: CheckContext): boolean {
  return step.checks.some((check) => checkFires(step, check, facts, ctx));
}
