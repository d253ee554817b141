import { IDV_FLOW_TTL_SECONDS, IDV_START_THROTTLE, RECOVERY_FLOW_TTL_SECONDS, RECOVERY_START_THROTTLE } from '../config/defaults.ts';
import type { ThrottleRule } from '../throttle/login-throttle.ts';

export interface FlowKindSettings {
  /** The signed cookie that carries the flow id (`__Host-` before it in production). */
  readonly cookie: string;
  /** How long the flow (its cookie and its state) lives after its last step. */
  readonly lifetimeSeconds: number;
  /** Starts per source address (FlowStore.admit). */
  readonly startLimit: ThrottleRule;
}

/**
 * Every kind of multi-step flow kept outside the provider's interactions, with its cookie,
 * lifetime and start limit in one place. A kind's name is also the prefix of its state's keys
 * (`recover:<id>`) and the scope of its start limit's per-address key.
 */
export const FLOW_KINDS = {
  /** The forgotten-password flow (/recover). */
  recover: { cookie: 'akamon_recover', lifetimeSeconds: RECOVERY_FLOW_TTL_SECONDS, startLimit: RECOVERY_START_THROTTLE },
  /** Identity verification through the upstream provider (/idv). */
  idv: { cookie: 'akamon_idv', lifetimeSeconds: IDV_FLOW_TTL_SECONDS, startLimit: IDV_START_THROTTLE },
} as const satisfies Record<string, FlowKindSettings>;

export type FlowKind = keyof typeof FLOW_KINDS;
