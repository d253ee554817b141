import type { FactorRow } from '../../mfa/mfa.store.ts';
import { authenticatorApp } from './authenticator-app.ts';
import type { FactorMethod, MethodAction, MethodDeps, MethodPart } from './method.ts';
import { phone } from './phone.ts';
import { securityKey } from './security-key.ts';

/** Every second-factor method, in the order the set-up offers them (the recommended one first). */
export function factorMethods(deps: MethodDeps): FactorMethod[] {
  return [authenticatorApp(deps), securityKey(deps), phone(deps)];
}

/** The methods an account can be asked for, in the order of its factors (its default first), each with its factors. */
export function methodsOf(methods: readonly FactorMethod[], factors: readonly FactorRow[]): Array<{ method: FactorMethod; factors: FactorRow[] }> {
  const used: Array<{ method: FactorMethod; factors: FactorRow[] }> = [];
  for (const factor of factors) {
    const method = methods.find((m) => m.kinds.includes(factor.kind));
    if (!method) continue;
    const entry = used.find((u) => u.method === method);
    if (entry) entry.factors.push(factor);
    else used.push({ method, factors: [factor] });
  }
  return used;
}

/**
 * Every action of one part of the methods (set-up or challenge), by name, with the method it
 * belongs to. A name used by two methods is a programming error: the host routes by name alone.
 */
export function actionsOf(methods: readonly FactorMethod[], part: (method: FactorMethod) => MethodPart<never>): Map<string, { method: FactorMethod; action: MethodAction }> {
  const actions = new Map<string, { method: FactorMethod; action: MethodAction }>();
  for (const method of methods) {
    for (const [name, action] of Object.entries(part(method).actions)) {
      if (actions.has(name)) throw new Error(`two methods answer the action "${name}"`);
      actions.set(name, { method, action });
    }
  }
  return actions;
}
