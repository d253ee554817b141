import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Reads shared by the steps of one HTTP request. A sign-in request asks for its client's row from
 * oidc-provider, the policy, the access rules and the account lookup; within the request they all
 * get the first answer. Nothing outlives the request, so another node's change is seen by the
 * next request, as without the memo. Outside a request (CLI, sweeper) every read goes through.
 *
 * Writes go through `writing`. A read that a write overtook (it began before the write ended) is
 * not kept, so no stale row survives a write.
 */
interface Scope {
  memo: Map<string, Promise<unknown>>;
  writes: number;
}

const scope = new AsyncLocalStorage<Scope>();

export function inRequestMemo<T>(run: () => Promise<T>): Promise<T> {
  return scope.run({ memo: new Map(), writes: 0 }, run);
}

/**
 * Loads `key` once in this request. `load` may hand over rows its query brought along with
 * `bringAlong(key, value)`: they answer later `memoised` reads of those keys, unless a write
 * happened while the load ran.
 */
export type BringAlong = (key: string, value: unknown) => void;

export function memoised<T>(key: string, load: (bringAlong: BringAlong) => Promise<T>): Promise<T> {
  const current = scope.getStore();
  if (!current) return load(() => undefined);
  let answer = current.memo.get(key) as Promise<T> | undefined;
  if (!answer) {
    const writesAtStart = current.writes;
    const unchanged = () => current.writes === writesAtStart;
    const loading = load((other, value) => {
      if (unchanged()) current.memo.set(other, Promise.resolve(value));
    });
    answer = loading;
    current.memo.set(key, loading);
    const drop = () => {
      if (current.memo.get(key) === loading) current.memo.delete(key);
    };
    // A failed read is not kept, nor one that a write overtook: the next step reads again.
    loading.then(() => {
      if (!unchanged()) drop();
    }, drop);
  }
  return answer;
}

/**
 * Leaves `value` for the later `memoised` reads of `key` in this request: a row that a statement of
 * another kind (a write's RETURNING) read on its way. A later write under a prefix of `key` forgets it.
 */
export function remember(key: string, value: unknown): void {
  scope.getStore()?.memo.set(key, Promise.resolve(value));
}

/**
 * What a read of this request brought along under `key` (see memoised), or undefined: for a reader
 * that takes such a row when there is one but keeps no read of its own.
 */
export function recalled<T>(key: string): Promise<T> | undefined {
  return scope.getStore()?.memo.get(key) as Promise<T> | undefined;
}

/**
 * Runs a write, then forgets every read whose key starts with `prefix`, whether the write
 * succeeded or not: the next read in this request, and any read the write overtook, go to the
 * database.
 */
export async function writing<T>(prefix: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } finally {
    const current = scope.getStore();
    if (current) {
      current.writes += 1;
      for (const key of current.memo.keys()) if (key.startsWith(prefix)) current.memo.delete(key);
    }
  }
}
