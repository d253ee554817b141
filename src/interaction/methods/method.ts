import { lockedRefusal, sendRefusal } from '../../http/send-refusal.ts';
import type { Context } from 'koa';
import type { AccountStore } from '../../account/account.store.ts';
import type { Config } from '../../config/config.ts';
import type { PageData } from '../../http/renderer.ts';
import type { MessageKey } from '../../i18n/en.ts';
import type { Translate } from '../../i18n/i18n.ts';
import type { MfaService, VerifyOutcome } from '../../mfa/mfa.service.ts';
import type { FactorRow } from '../../mfa/mfa.store.ts';
import type { SendOutcome } from '../../mfa/code-sender.ts';

/** What the method modules use: the factor service, the accounts and the settings. */
export interface MethodDeps {
  config: Config;
  accounts: AccountStore;
  mfa: MfaService;
}

/**
 * Where a method runs: a sign-in interaction, the recovery flow. The host keeps the method's pending
 * values server-side (a sealed secret, a challenge, the phone a code went to) and names its forms.
 */
export interface MethodHost {
  ctx: Context;
  accountId: string;
  /** What codes sent here prove (e.g. `signin:<uid>`): a code sent for one flow is refused in another. */
  flow: string;
  body: Record<string, unknown>;
  t: Translate;
  state(): Promise<Record<string, unknown>>;
  saveState(patch: Record<string, unknown>): Promise<void>;
  /** The form action of one of the method's actions. */
  url(action: string): string;
  /** Only a security key or passkey will do here (the client asked for ACR_PHISHING_RESISTANT). */
  phishingResistantOnly?: boolean;
}

export type Proven = Extract<VerifyOutcome, { ok: true }>;

/** What an action leads to: the factor proven (or saved), or the method's page again, with a message or without. */
export type MethodResult = { ok: true; proven: Proven } | { ok: false; error: string | null; status: number };

export type MethodAction = (host: MethodHost) => Promise<MethodResult>;

/** One part of a method: its page's data (shown by the view `views/<view>.eta`) and its form actions. */
export interface MethodPart<Extra = undefined> {
  view: string;
  page(host: MethodHost, extra: Extra): Promise<PageData>;
  /** By action name; the names of all methods are distinct, so a host routes them without a prefix. */
  actions: Record<string, MethodAction>;
}

/**
 * A second-factor method: what the person picks ("Which method would you like to set up?"), how
 * it is set up, and how it is asked for at sign-in and in recovery. Adding a method is one module
 * like this (and its texts and views); the set-up step and the factor challenge take it from the list.
 */
export interface FactorMethod {
  id: 'app' | 'key' | 'phone';
  /** The stored factor kinds this method answers for (a lent hardware token shows codes like an app). */
  kinds: readonly FactorRow['kind'][];
  nameKey: MessageKey;
  descriptionKey: MessageKey;
  available(deps: MethodDeps): boolean;
  setup: MethodPart;
  /** Asked for with the account's factors of this method (never empty). */
  challenge: MethodPart<FactorRow[]>;
}

/** The page's answer to a refused code or credential: message and status (and Retry-After while locked). */
export function refused(host: MethodHost, outcome: Exclude<VerifyOutcome, { ok: true }>, wrongCode: MessageKey = 'mfa.wrong_code'): MethodResult {
  if (outcome.reason === 'locked') return { ok: false, ...lockedRefusal(host.ctx, host.t, outcome) };
  const keys = { replayed: 'mfa.replayed', webauthn_failed: 'mfa.webauthn_failed', expired: 'mfa.code_expired', wrong_code: wrongCode } as const;
  return { ok: false, error: host.t(keys[outcome.reason]), status: 400 };
}

/** A verification's outcome as an action's result. */
export function resultOf(host: MethodHost, outcome: VerifyOutcome, wrongCode?: MessageKey): MethodResult {
  return outcome.ok ? { ok: true, proven: outcome } : refused(host, outcome, wrongCode);
}

/** Options for the browser, as inert JSON inside a <script type="application/json"> element. */
export function embedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/** The page again, as it is (after a code was sent, or a stale form). */
export const samePage: MethodResult = { ok: false, error: null, status: 200 };

/** The page's answer to a code that could not be sent. */
export function sendRefused(host: MethodHost, outcome: Exclude<SendOutcome, { ok: true }>): MethodResult {
  return { ok: false, ...sendRefusal(host.ctx, host.t, outcome) };
}
