import compose from 'koa-compose';
import type { Context, Middleware, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { KeyMaterial } from './keys.ts';

/**
 * Holds the current oidc-provider instance and rebuilds it when the keys in the database change
 * (a rotation made through any node), so every node serves the same JWKS within one refresh
 * interval. The provider runs on the app's own request context, as koa-mount would run it.
 */
export class ProviderHolder {
  #provider: Provider;
  #middleware: Middleware;
  #fingerprint: string;
  #timer: NodeJS.Timeout | undefined;
  readonly #build: (keys: KeyMaterial) => Provider;
  readonly #loadKeys: () => Promise<KeyMaterial>;
  readonly #onSwap: (keys: KeyMaterial) => void;

  constructor(keys: KeyMaterial, build: (keys: KeyMaterial) => Provider, loadKeys: () => Promise<KeyMaterial>, onSwap: (keys: KeyMaterial) => void) {
    this.#build = build;
    this.#loadKeys = loadKeys;
    this.#onSwap = onSwap;
    this.#fingerprint = keys.fingerprint;
    this.#provider = build(keys);
    this.#middleware = compose(this.#provider.middleware) as Middleware;
    onSwap(keys);
  }

  get provider(): Provider {
    return this.#provider;
  }

  middleware(): Middleware {
    return (ctx: Context, next: Next) => this.#middleware(ctx, next);
  }

  /** Reloads the keys; rebuilds the provider if they changed. Returns whether it did. */
  async refresh(): Promise<boolean> {
    const keys = await this.#loadKeys();
    if (keys.fingerprint === this.#fingerprint) return false;
    const provider = this.#build(keys);
    this.#provider = provider;
    this.#middleware = compose(provider.middleware) as Middleware;
    this.#fingerprint = keys.fingerprint;
    this.#onSwap(keys);
    return true;
  }

  start(intervalSeconds: number, onError: (error: unknown) => void): void {
    this.#timer = setInterval(() => this.refresh().catch(onError), intervalSeconds * 1000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
