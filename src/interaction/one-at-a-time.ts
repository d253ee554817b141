import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { FLOW_TURN_HOLD_SECONDS, FLOW_TURN_WAIT_MS } from '../config/defaults.ts';
import { HeldWrites } from '../db/one-statement.ts';
import type { InteractionStateStore } from './interaction-state.store.ts';

type Patch = Record<string, unknown>;

/**
 * Runs `work` for the flow or interaction `key` while no other request for it runs, on any node:
 * a form posted twice (a double click, a retry, twenty on purpose) is handled once after the
 * other, each seeing what the one before it left. So every step written as "read the state,
 * check it, act, write the state" is a single transition, and what it uses up (a stage, a
 * challenge, a pending secret) is used once. `work` gets the state as its turn began, and may
 * `leave` a patch that is merged into the state as the turn ends (also when the work then fails);
 * the state then lives at least `ttlSeconds` more, and the writes the work held back (HeldWrites)
 * are made in that statement (a turn's end with nothing in it that fails does not fail the work's
 * answer). Resolves false, having run nothing, when the turn did not come in time.
 */
export async function oneAtATime(
  store: InteractionStateStore,
  key: string,
  ttlSeconds: number,
  work: (state: Patch, leave: (patch: Patch) => void) => Promise<unknown>,
  // How the turn is taken: a sign-in interaction's turn also reads the interaction and its client (takeInteractionTurn).
  take: (token: string, holdSeconds: number) => Promise<Patch | undefined> = (token, holdSeconds) => store.takeTurn(key, token, holdSeconds),
): Promise<boolean> {
  const token = randomUUID();
  const deadline = Date.now() + FLOW_TURN_WAIT_MS;
  let pause = 10;
  let state = await take(token, FLOW_TURN_HOLD_SECONDS);
  while (!state) {
    if (Date.now() + pause > deadline) return false;
    await sleep(pause);
    pause = Math.min(pause * 2, 200);
    state = await take(token, FLOW_TURN_HOLD_SECONDS);
  }
  const holdEnds = Date.now() + FLOW_TURN_HOLD_SECONDS * 1000;
  let left: Patch = {};
  // The provider's save of the step's result (adapter.ts) goes out in the statement that ends the turn.
  const held = new HeldWrites();
  try {
    await held.run(() =>
      work(state, (patch) => {
        left = { ...left, ...patch };
      }),
    );
  } catch (error) {
    // What the work left before it failed happened (a factor stored, a challenge used up): it is
    // kept. The work's own failure is the one to report.
    await endTurn(store, key, token, left, ttlSeconds, held.writes, holdEnds).catch(() => undefined);
    throw error;
  }
  const nothingLeft = Object.keys(left).length === 0 && held.writes.length === 0;
  // Work that left nothing for the turn's end has done all it does (a temporary password issued
  // and on its page): a turn not given back now is given back in the background, and the answer stands.
  await endTurn(store, key, token, left, ttlSeconds, held.writes, holdEnds).catch((error: unknown) => {
    if (!nothingLeft) throw error;
  });
  return true;
}

/**
 * Ends a turn. When the database cannot take that now (it is away: the request answers 503 with
 * Retry-After, unless the turn carried nothing: see oneAtATime), the same statement is tried again every second in the background while the turn's
 * hold lasts (no other request can hold the turn meanwhile): the person's retry after Retry-After
 * then finds the step's result (a password proven, a state moved on) as if the statement had gone
 * through at once, not "already done" (409) for the rest of the hold. A session or grant so saved
 * late after a sign-out everywhere stays ended: it began before the account's sessions ended.
 */
async function endTurn(store: InteractionStateStore, key: string, token: string, left: Patch, ttlSeconds: number, writes: HeldWrites['writes'], holdEnds: number): Promise<void> {
  try {
    await store.endTurn(key, token, left, ttlSeconds, writes);
  } catch (error) {
    const again = () => {
      if (Date.now() + TURN_RETURN_RETRY_MS < holdEnds) setTimeout(() => store.endTurn(key, token, left, ttlSeconds, writes).catch(again), TURN_RETURN_RETRY_MS).unref();
    };
    again();
    throw error;
  }
}

const TURN_RETURN_RETRY_MS = 1000;
