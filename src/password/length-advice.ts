import type { ClientStore } from '../client/client.store.ts';

/** The shortest password limit any system has (32 characters at the reference university), and the systems with it. */
export interface ShortestLengthLimit {
  max: number;
  systems: string[];
}

/** Null when no system limits the length; the pages turn the answer into their notice and warning. */
export async function shortestLengthLimit(clients: ClientStore): Promise<ShortestLengthLimit | null> {
  const limits = await clients.passwordLengthLimits();
  if (limits.length === 0) return null;
  const max = limits[0].max_password_length;
  return { max, systems: limits.filter((l) => l.max_password_length === max).map((l) => l.name) };
}
