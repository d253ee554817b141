import { createRequire } from 'node:module';

/**
 * Libraries only a few routes need (SAML's XML stack, WebAuthn, SMTP, QR codes, CSV, phrase breaks,
 * the back-channel HTTP client), loaded on first use instead of at start: loading them all before
 * listening cost about half a second of the two to ready. Right after listening, main.ts loads them in
 * the background (warmLazyModules), so the first person who needs one rarely waits for it.
 *
 * Loaded with require, not import(): every call site stays synchronous (page rendering, XML parsing
 * and signing are), and a dynamic import would run the same synchronous module code anyway. Each
 * package loaded so must offer CommonJS (or be an ES module without top-level await).
 */

const require = createRequire(import.meta.url);
const registered: Array<() => unknown> = [];

/**
 * A getter that runs `load` on its first call and answers what it returned (the module, or what the
 * caller makes of it once) ever after. `load` gets a require to call with the package's name
 * written out (the dependency rules read it there), and may load a polyfill the library expects
 * first. A load that throws is tried again on the next call.
 */
export function lazyModule<T>(load: (require: NodeJS.Require) => T): () => T {
  let module: T | undefined;
  const get = (): T => {
    module ??= load(require);
    return module;
  };
  registered.push(get);
  return get;
}

/** Loads every lazy module at once: the image's build fills Node's compile cache with them too. */
export function loadLazyModules(): void {
  for (const get of registered) get();
}

/**
 * Loads every lazy module in the background, one per turn of the event loop so requests are served
 * in between. Never throws: a failure goes to `onError`, and first use tries (and fails) again.
 */
export function warmLazyModules(onError: (error: unknown) => void): void {
  const pending = [...registered];
  const next = () => {
    const get = pending.shift();
    if (!get) return;
    try {
      get();
    } catch (error) {
      onError(error);
    }
    setImmediate(next).unref();
  };
  setImmediate(next).unref();
}
