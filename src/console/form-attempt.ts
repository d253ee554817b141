import { randomUUID } from 'node:crypto';
import type { InteractionStateStore } from '../interaction/interaction-state.store.ts';

/**
 * Single-use forms: each form whose POST must not happen twice (the browser's reload of its answer
 * resends it, as do a double click and the back button) carries an attempt that one POST uses up.
 * An attempt is bound to what the form is about (the operator, an account), so it is good for that
 * form only.
 */
export class FormAttempts {
  readonly #state: Pick<InteractionStateStore, 'merge' | 'transition'>;
  readonly #kind: string;
  readonly #seconds: number;

  /** `kind` names the form in the store's keys; `seconds` is how long a form shown stays good. */
  constructor(state: Pick<InteractionStateStore, 'merge' | 'transition'>, kind: string, seconds: number) {
    this.#state = state;
    this.#kind = kind;
    this.#seconds = seconds;
  }

  #key(attempt: string) {
    return `console-${this.#kind}:${attempt}`;
  }

  /** A new attempt for a form being shown (also one shown again with a message). */
  async issue(binding: Record<string, string>): Promise<string> {
    const attempt = randomUUID();
    await this.#state.merge(this.#key(attempt), binding, this.#seconds);
    return attempt;
  }

  /**
   * Runs `work` if the attempt is unused and bound to `binding`, using it up (of parallel POSTs,
   * exactly one goes on); undefined when it was used or is unknown. When `work` fails nothing was
   * done, so the same form may be sent again.
   */
  async once<T>(attempt: string, binding: Record<string, string>, work: () => Promise<T>): Promise<{ value: T } | undefined> {
    if (!attempt || !(await this.#state.transition(this.#key(attempt), { ...binding, used: null }, { used: true }, this.#seconds))) return undefined;
    try {
      return { value: await work() };
    } catch (error) {
      await this.#state.transition(this.#key(attempt), { used: true }, { used: null }, this.#seconds);
      throw error;
    }
  }
}
