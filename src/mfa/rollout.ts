/**
 * MFA made mandatory in stages, as the university did: optional, then a warning period in which
 * people without MFA are reminded, then required. University-wide dates and per-client dates; the
 * earlier date wins.
 */
export type RolloutPhase = 'optional' | 'warning' | 'required';

export interface RolloutDates {
  warningFrom?: Date | string | null;
  requiredFrom?: Date | string | null;
}

const at = (value: Date | string | null | undefined) => (value ? new Date(value).getTime() : Infinity);

export function rolloutPhase(now: Date, ...schedules: RolloutDates[]): { phase: RolloutPhase; requiredFrom: Date | undefined } {
  const required = Math.min(...schedules.map((s) => at(s.requiredFrom)));
  const warning = Math.min(...schedules.map((s) => at(s.warningFrom)));
  const requiredFrom = Number.isFinite(required) ? new Date(required) : undefined;
  if (now.getTime() >= required) return { phase: 'required', requiredFrom };
  if (now.getTime() >= warning) return { phase: 'warning', requiredFrom };
  return { phase: 'optional', requiredFrom };
}
