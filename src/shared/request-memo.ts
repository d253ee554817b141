import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Reads shared by the steps of one HTTP request. A sign-in request asks for its client's row from
 * oidc-provider, the policy, the access rules and the account lookup; within the request they all
 * get the first answer. Nothing outlives the request, so another node's change is seen by the
 * next request, as without the memo. Outside a request (CLI, sweeper) every read goes through.
 */
const scope = new AsyncLocalStorage<Map<string, Promise<unknown>>>();

export function inRequestMemo<T>(run: () => Promise<T>): Promise<T> {
  return scope.run(new Map(), run);
}

export function memoised<T>(key: string, load: () => Promise<T>): Promise<T> {
  const memo = scope.getStore();
  if (!memo) return load();
  let answer = memo.get(key) as Promise<T> | undefined;
  if (!answer) {
    answer = load();
    memo.set(key, answer);
    // A failed read is not remembered: the next step may try again.
    answer.catch(() => memo.delete(key));
  }
  return answer;
}

/** Keeps what a read brought along with it, for a later `memoised` read of `key` in this request. */
export function remember(key: string, value: unknown): void {
  scope.getStore()?.set(key, Promise.resolve(value));
}

/** After a write in this request, the next read of `key` goes to the database. */
export function forget(key: string): void {
  scope.getStore()?.delete(key);
}

/** `forget` for every key that starts with `prefix`. */
export function forgetAll(prefix: string): void {
  const memo = scope.getStore();
  if (!memo) return;
  for (const key of memo.keys()) if (key.startsWith(prefix)) memo.delete(key);
}
