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

export function memoised<T>(key: string, load: () => Promise<T>): Promise<T> {
  const current = scope.getStore();
  if (!current) return load();
  let answer = current.memo.get(key) as Promise<T> | undefined;
  if (!answer) {
    const writesAtStart = current.writes;
    const loading = load();
    answer = loading;
    current.memo.set(key, loading);
    const drop = () => {
      if (current.memo.get(key) === loading) current.memo.delete(key);
    };
    // A failed read is not kept, nor one that a write overtook: the next step reads again.
    loading.then(() => { if (current.writes !== writesAtStart) drop(); }, drop);
  }
  return answer;
}

/** How many writes this request has made so far: pass it to `remember` from before the read. */
export function writesSoFar(): number {
  return scope.getStore()?.writes ?? 0;
}

/**
 * Keeps what a read brought along with it, for a later `memoised` read of `key` in this request,
 * unless a write has happened since the read began (`writesAtRead`).
 */
export function remember(key: string, value: unknown, writesAtRead: number): void {
  const current = scope.getStore();
  if (current && current.writes === writesAtRead) current.memo.set(key, Promise.resolve(value));
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
