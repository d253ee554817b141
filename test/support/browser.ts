import { Agent, buildConnector, type Dispatcher, fetch as undiciFetch } from 'undici';
import crypto from 'node:crypto';

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

export interface Page {
  status: number;
  url: string;
  html: string;
  headers: Headers;
}

/**
 * A minimal browser over real HTTP: a cookie jar that honours Path, manual redirects, form posts
 * with the page's CSRF token, and the address a page moves to (page-url.js). Redirects leaving
 * Akamon's origin (to a relying party) stop.
 */
export class Browser {
  readonly origin: string;
  readonly cookies: Map<string, StoredCookie>;
  acceptLanguage = 'en';
  extraHeaders: Record<string, string> = {};

  readonly #dispatcher: Dispatcher | undefined;

  /**
   * Passing another browser's cookies makes both one browser behind a load balancer. `via` (a
   * node's own origin) is the load balancer: the browser asks for the issuer's URLs, and the
   * connection goes to that node, as it would behind one host name.
   */
  constructor(origin: string, cookies = new Map<string, StoredCookie>(), options: { via?: string } = {}) {
    this.origin = origin;
    this.cookies = cookies;
    if (options.via) {
      const node = new URL(options.via);
      const connect = buildConnector({});
      this.#dispatcher = new Agent({ connect: (opts, callback) => connect({ ...opts, hostname: node.hostname, host: node.host, port: node.port }, callback) });
    }
  }

  cookieHeader(url: URL): string {
    return [...this.cookies.values()]
      .filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/')
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  #store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const pathAttr = attributes.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('path='));
      const cookiePath = pathAttr ? pathAttr.slice(5) : '/';
      const expired = attributes.some((a) => /^expires=thu, 01 jan 1970/i.test(a.trim()) || /^max-age=0$/i.test(a.trim()));
      const key = `${name};${cookiePath}`;
      if (expired || value === '') this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path: cookiePath });
    }
  }

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url, this.origin);
    const headers = new Headers(init.headers);
    const cookie = this.cookieHeader(target);
    if (cookie) headers.set('cookie', cookie);
    headers.set('accept-language', this.acceptLanguage);
    for (const [name, value] of Object.entries(this.extraHeaders)) headers.set(name, value);
    const response = this.#dispatcher
      ? ((await undiciFetch(target, { ...(init as object), headers: Object.fromEntries(headers), redirect: 'manual', dispatcher: this.#dispatcher })) as unknown as Response)
      : await fetch(target, { ...init, headers, redirect: 'manual' });
    this.#store(response);
    return response;
  }

  /** Follows redirects inside Akamon; returns the final page, or the relying-party URL it was sent to. */
  async visit(url: string, init: RequestInit = {}): Promise<Page> {
    let response = await this.request(url, init);
    let current = new URL(url, this.origin).href;
    for (let hops = 0; hops < 20 && response.status >= 300 && response.status < 400; hops += 1) {
      current = new URL(response.headers.get('location')!, current).href;
      if (new URL(current).origin !== this.origin) return { status: response.status, url: current, html: '', headers: response.headers };
      response = await this.request(current);
    }
    const html = await response.text();
    // A page drawn away from its own address (a form's answer, the authorization's first step) moves
    // the address bar there (page-url.js): a reload or a later visit of `url` asks for that page.
    const address = /<script src="\/static\/page-url\.js"[^>]*data-url="([^"]+)"/.exec(html);
    const page = { status: response.status, url: address ? new URL(decode(address[1]!), current).href : current, html, headers: response.headers };
    // oidc-provider's self-submitting forms (ending the previous session when another account
    // signs in): a browser runs their script, so the driver submits them too.
    if (/document\.forms\[0\]\.submit\(\)/.test(page.html)) {
      const action = decode(/<form method="post" action="([^"]+)"/.exec(page.html)![1]);
      const body = new URLSearchParams([...page.html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/?>/g)].map((m): [string, string] => [m[1], decode(m[2])]));
      return this.visit(action, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    }
    return page;
  }

  /** The page's form (the first one whose action matches `action`) filled with `fields`: where it posts, and what. */
  form(page: Page, action: RegExp, fields: Record<string, string>, options: { csrf?: string | null } = {}): { url: string; body: URLSearchParams } {
    const forms = [...page.html.matchAll(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)];
    const form = forms.find((f) => action.test(decode(f[1])));
    if (!form) throw new Error(`no form matching ${action} on ${page.url}:\n${page.html.slice(0, 2000)}`);
    const body = new URLSearchParams();
    for (const hidden of form[2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) body.set(hidden[1], decode(hidden[2]));
    if (options.csrf !== undefined) {
      if (options.csrf === null) body.delete('_csrf');
      else body.set('_csrf', options.csrf);
    }
    for (const [name, value] of Object.entries(fields)) body.set(name, value);
    return { url: new URL(decode(form[1]), page.url).href, body };
  }

  /** Submits the page's form (the first one whose action matches `action`) with `fields`. */
  async submit(page: Page, action: RegExp, fields: Record<string, string>, options: { csrf?: string | null } = {}): Promise<Page> {
    const { url, body } = this.form(page, action, fields, options);
    return this.visit(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }
}

export function decode(text: string): string {
  return text
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#x2F;/g, '/');
}

export function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

export function authorizeUrl(origin: string, params: Record<string, string>): string {
  const url = new URL('/auth', origin);
  for (const [k, v] of Object.entries({ response_type: 'code', scope: 'openid profile email', state: crypto.randomBytes(8).toString('hex'), ...params })) url.searchParams.set(k, v);
  return url.href;
}

/** Presses "Sign out" on a first-party site's page (`home`: /account or /console): the provider's question follows. */
export async function pressSignOut(browser: Browser, home: string): Promise<Page> {
  return browser.submit(await browser.visit(home), /\/logout$/, {});
}
