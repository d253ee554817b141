import type { PageData } from '../../http/renderer.ts';
import { factorsFor } from '../../mfa/mfa.service.ts';
import { actionsOf, methodsOf } from './factor-methods.ts';
import { type FactorMethod, type MethodDeps, type MethodHost, type MethodResult, samePage } from './method.ts';

/** The actions every challenge answers besides its methods': choosing another of the account's methods. */
const USE = 'use';

/**
 * "Verify your identity": one of the account's second factors, asked for by sign-in and by the
 * forgotten-password flow alike. The page shows one method (the account's default, or the one the
 * person picked) and lists the others; the host decides what a proven factor leads to.
 */
export class FactorChallenge {
  readonly #deps: MethodDeps;
  readonly #methods: readonly FactorMethod[];
  readonly #actions: ReturnType<typeof actionsOf>;

  constructor(deps: MethodDeps, methods: readonly FactorMethod[]) {
    this.#deps = deps;
    this.#methods = methods;
    this.#actions = actionsOf(methods, (m) => m.challenge);
  }

  /** The names of the forms the challenge page posts to. */
  get actionNames(): string[] {
    return [...this.#actions.keys(), USE];
  }

  async #usable(host: MethodHost) {
    return methodsOf(this.#methods, factorsFor(await this.#deps.mfa.factors(host.accountId), host.phishingResistantOnly ?? false));
  }

  /** The page's data for views/mfa-challenge.eta: the current method's part and the other ways. */
  async page(host: MethodHost, error: string | null): Promise<PageData> {
    const usable = await this.#usable(host);
    const state = await host.state();
    const current = usable.find((u) => u.method.id === state.challengeMethod) ?? usable[0];
    if (!current) return { method: null, others: [], error };
    return {
      method: { view: current.method.challenge.view, ...(await current.method.challenge.page(host, current.factors)) },
      others: usable.filter((u) => u !== current).map((u) => ({ id: u.method.id, name: host.t(u.method.nameKey) })),
      useAction: host.url(USE),
      error,
    };
  }

  /** Runs one of the page's forms; an action of a method the account does not have is refused. */
  async act(name: string, host: MethodHost): Promise<MethodResult> {
    const usable = await this.#usable(host);
    if (name === USE) {
      const chosen = usable.find((u) => u.method.id === host.body.method);
      if (chosen) await host.saveState({ challengeMethod: chosen.method.id });
      return samePage;
    }
    const entry = this.#actions.get(name);
    if (!entry || !usable.some((u) => u.method === entry.method)) return { ok: false, error: host.t('mfa.code_expired'), status: 400 };
    await host.saveState({ challengeMethod: entry.method.id });
    return entry.action(host);
  }
}
