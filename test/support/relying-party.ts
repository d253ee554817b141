import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from '@jest/globals';
import { Agent } from 'undici';
import { adminApi, type RunningAkamon } from './akamon.ts';
import { Browser, type Page } from './browser.ts';
import { enterCredentials } from './flows.ts';
import { watchProcess, type WatchedProcess } from './processes.ts';

/**
 * Relying parties that are not Akamon's code (Apache httpd with mod_auth_openidc, a Python app)
 * run as their own processes on loopback, and a browser that walks between them and Akamon.
 */

/**
 * Why a stack cannot run here: the first of its files (a program, a module) that is not
 * installed, with the Debian package that brings it. Undefined when everything is there.
 */
export function missingPackage(files: Record<string, string>): string | undefined {
  const missing = Object.entries(files).find(([file]) => !fs.existsSync(file));
  return missing && `${missing[0]} is missing: apt-get install ${missing[1]}`;
}

/** A relying party's server process, reachable at `url`. */
export interface RelyingPartyProcess extends WatchedProcess {
  readonly url: string;
}

/**
 * Starts `command` and waits until `url` answers; its output is kept for failure messages. The
 * environment is the test's without jest's NODE_OPTIONS, plus `env`.
 */
export async function startRelyingParty(options: { name: string; command: string; args: string[]; url: string; env?: Record<string, string> }): Promise<RelyingPartyProcess> {
  const { NODE_OPTIONS: _jest, ...env } = process.env;
  const child = spawn(options.command, options.args, { env: { ...env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const watched = watchProcess(child, options.name);
  try {
    await watched.untilAnswers(options.url, 20_000);
  } catch (error) {
    await watched.stop();
    throw error;
  }
  return Object.assign(watched, { url: options.url });
}

export const APACHE = '/usr/sbin/apache2';
export const APACHE_MODULES = '/usr/lib/apache2/modules';
export const APACHE_PACKAGES = { [APACHE]: 'apache2', [`${APACHE_MODULES}/mod_auth_openidc.so`]: 'libapache2-mod-auth-openidc' };

/** The modules of the OIDC recipe: what `a2enmod auth_openidc rewrite include` adds to Debian's defaults. */
const OIDC_RECIPE_MODULES = ['include', 'rewrite', 'auth_openidc'];

/**
 * Apache httpd on 127.0.0.1:`port` in a directory of its own, with what Debian's apache2.conf
 * gives and the `modules` a site enables (by default the OIDC recipe's), plus `site` (the
 * recipe's configuration) and the files `pages` (paths under the document root). Run as root, the
 * workers run as www-data, as Debian's do. Stopping it removes the directory.
 */
export async function startApache(options: { port: number; site: (documentRoot: string) => string; pages: Record<string, string>; modules?: string[] }): Promise<RelyingPartyProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'akamon-apache-'));
  const documentRoot = path.join(dir, 'htdocs');
  const errorLog = path.join(dir, 'error.log');
  const readLog = () => (fs.existsSync(errorLog) ? fs.readFileSync(errorLog, 'utf8') : '');
  for (const [file, text] of Object.entries(options.pages)) {
    fs.mkdirSync(path.dirname(path.join(documentRoot, file)), { recursive: true });
    fs.writeFileSync(path.join(documentRoot, file), text);
  }
  const modules = ['mpm_event', 'authn_core', 'authz_core', 'authz_user', 'mime', 'dir', ...(options.modules ?? OIDC_RECIPE_MODULES)];
  const config = [
    `ServerRoot ${dir}`,
    `DefaultRuntimeDir ${dir}`,
    `PidFile ${dir}/httpd.pid`,
    `Listen 127.0.0.1:${options.port}`,
    `ServerName 127.0.0.1:${options.port}`,
    // One worker process: the modules' shared-memory caches (mod_auth_openidc's, mod_auth_mellon's) are shared by all of them anyway.
    'StartServers 1',
    'ServerLimit 1',
    'ThreadsPerChild 16',
    'MaxRequestWorkers 16',
    'MinSpareThreads 1',
    'MaxSpareThreads 16',
    ...(process.getuid?.() === 0 ? ['User www-data', 'Group www-data'] : []),
    // A file: Apache cannot open /dev/stderr when it is a pipe to the test.
    `ErrorLog ${errorLog}`,
    'LogLevel warn',
    ...modules.map((m) => `LoadModule ${m}_module ${APACHE_MODULES}/mod_${m}.so`),
    'TypesConfig /dev/null',
    'AddType text/html .html .shtml',
    `DocumentRoot ${documentRoot}`,
    `<Directory ${documentRoot}>`,
    '  Require all granted',
    '</Directory>',
    options.site(documentRoot),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'httpd.conf'), config);
  // The workers (www-data) read the pages; the directory is created private.
  fs.chmodSync(dir, 0o755);
  try {
    const apache = await startRelyingParty({ name: 'Apache', command: APACHE, args: ['-f', path.join(dir, 'httpd.conf'), '-DFOREGROUND'], url: `http://127.0.0.1:${options.port}/` });
    const { stop, output } = apache;
    return Object.assign(apache, {
      output: () => `${output()}\n${readLog()}`,
      async stop() {
        const exit = await stop();
        fs.rmSync(dir, { recursive: true, force: true });
        return exit;
      },
    });
  } catch (error) {
    const log = readLog();
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}\n${log}`);
  }
}

/**
 * What a browser sends when a person follows a link or a redirect: `Sec-Fetch-Mode: navigate`.
 * fetch() always says `cors`, and mod_auth_openidc answers 401 instead of redirecting to the
 * provider to whatever is not a navigation (it takes it for a script's request).
 */
const NAVIGATION = new Agent().compose(
  (dispatch) => (options, handler) =>
    dispatch(
      {
        ...options,
        headers: {
          ...Object.fromEntries(Object.entries((options.headers ?? {}) as Record<string, string>).filter(([name]) => !/^(accept|sec-fetch-mode|sec-fetch-dest)$/i.test(name))),
          accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
          'sec-fetch-mode': 'navigate',
          'sec-fetch-dest': 'document',
        },
      },
      handler,
    ),
);

/**
 * A browser whose requests are navigations, following redirects between Akamon and relying
 * parties with one cookie jar. On loopback every server has the host 127.0.0.1, so, as in a real
 * browser, each one gets the others' cookies too; their names do not clash.
 */
export class NavigatingBrowser extends Browser {
  override request(url: string, init: RequestInit = {}): Promise<Response> {
    return super.request(url, { ...init, dispatcher: NAVIGATION } as RequestInit);
  }

  /** The same browser, its requests relative to `origin`. */
  at(origin: string): NavigatingBrowser {
    const browser = new NavigatingBrowser(origin, this.cookies);
    browser.acceptLanguage = this.acceptLanguage;
    return browser;
  }

  /** Visits `url` and follows redirects across servers; answers the first page that is not a redirect. */
  async browse(url: string, init: RequestInit = {}): Promise<Page> {
    let page = await this.at(new URL(url).origin).visit(url, init);
    for (let hops = 0; hops < 10 && page.status >= 300 && page.status < 400; hops += 1) page = await this.at(new URL(page.url).origin).visit(page.url);
    return page;
  }

  /**
   * A sign-in begun by the relying party at `start`: Akamon's identifier and password pages, its
   * consent page when the client is not first-party, and back to the relying party. Answers the
   * relying party's page.
   */
  async signIn(start: string, account: { commonId: string; password: string }, options: { consent?: boolean } = {}): Promise<Page> {
    const akamonPage = await this.browse(start);
    expect(akamonPage.html).toMatch(/name="identifier"/);
    const akamon = this.at(new URL(akamonPage.url).origin);
    let page = await enterCredentials(akamon, akamonPage, account.commonId, account.password);
    if (options.consent) {
      expect(page.html).toMatch(/name="decision"/);
      page = await akamon.submit(page, /\/decide$/, { decision: 'approve' });
    }
    if (page.status < 300 || page.status >= 400) throw new Error(`Akamon did not send the browser back (${page.status} ${page.url}):\n${page.html.slice(0, 1500)}`);
    return this.browse(page.url);
  }

  /**
   * A sign-in begun by the relying party at `start` for an account its rules refuse: Akamon's
   * 53003 page, left with its button. Answers the error response Akamon sent back and the
   * relying party's page for it.
   */
  async refused(start: string, account: { commonId: string; password: string }): Promise<{ response: URL; page: Page }> {
    const login = await this.browse(start);
    const akamon = this.at(new URL(login.url).origin);
    const refusal = await akamon.submit(await akamon.submit(login, /\/identifier$/, { identifier: account.commonId }), /\/password$/, { password: account.password });
    expect(refusal.status).toBe(403);
    const back = await akamon.submit(refusal, /\/leave$/, {});
    return { response: new URL(back.url), page: await this.browse(back.url) };
  }

  /** Akamon's "Sign out?" page (`page`) answered with "Yes, sign me out"; answers where it leads. */
  async confirmSignOut(page: Page): Promise<Page> {
    expect(page.html).toContain('Sign out?');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.html)![1];
    const action = /<form id="op.logoutForm" method="post" action="([^"]+)"/.exec(page.html)![1];
    return this.browse(new URL(action, page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
  }
}

/** Puts `commonId` on the client's deny list, as `akamon client update ID --deny-account` does. */
export async function denyAccount(akamon: RunningAkamon, clientId: string, commonId: string): Promise<void> {
  expect((await adminApi(akamon, 'POST', `/clients/${encodeURIComponent(clientId)}/accounts`, { commonId, effect: 'deny' })).status).toBe(200);
}

/** The account's live Akamon sign-in sessions (rows), for "the logout ended it". */
export function akamonSessions(akamon: RunningAkamon, accountId: string) {
  return akamon.deps.database.db.selectFrom('oidc_payload').select('id').where('model', '=', 'Session').where('account_id', '=', accountId).execute();
}

/** The JSON a relying party's page answered. */
export function jsonOf(page: Page): Record<string, any> {
  return JSON.parse(page.html) as Record<string, any>;
}

/** A relying-party app's home page (apps that answer JSON: the authlib and Express test apps). */
export async function appHome(browser: NavigatingBrowser, origin: string): Promise<Record<string, any>> {
  const page = await browser.browse(`${origin}/`);
  expect(page.status).toBe(200);
  return jsonOf(page);
}

/** A new browser signed in to such an app through Akamon, back on the app's home page. */
export async function signedInToApp(akamon: RunningAkamon, origin: string, account: { commonId: string; password: string }, options: { consent?: boolean } = {}): Promise<NavigatingBrowser> {
  const browser = new NavigatingBrowser(akamon.url);
  const page = await browser.signIn(`${origin}/login`, account, options);
  expect(page.url).toBe(`${origin}/`);
  expect(jsonOf(page).signed_in).toBe(true);
  return browser;
}

/**
 * The authorization request a relying party sends the browser to from `start`: a redirect to
 * Akamon's /auth for the code flow with PKCE S256 and the recipes' scopes, for `client`. Answers
 * its parameters, for what a recipe adds. The check every recipe test opens with.
 */
export async function codeFlowRequest(akamon: RunningAkamon, start: string, client: { clientId: string; redirectUri: string }): Promise<URLSearchParams> {
  const response = await new NavigatingBrowser(new URL(start).origin).request(start);
  expect(response.status).toBe(302);
  const location = new URL(response.headers.get('location')!);
  expect(`${location.origin}${location.pathname}`).toBe(`${akamon.url}/auth`);
  expect(Object.fromEntries(location.searchParams)).toMatchObject({
    response_type: 'code',
    client_id: client.clientId,
    redirect_uri: client.redirectUri,
    scope: 'openid profile email',
    code_challenge_method: 'S256',
  });
  return location.searchParams;
}

/**
 * RP-initiated logout begun at `start`: Akamon's "Sign out?" page for the client named
 * `clientName`, confirmed. Answers that page and where the confirmation leads.
 */
export async function rpInitiatedLogout(akamon: RunningAkamon, browser: NavigatingBrowser, start: string, clientName: string): Promise<{ confirm: Page; done: Page }> {
  const confirm = await browser.browse(start);
  expect(confirm.url.startsWith(`${akamon.url}/session/end?`)).toBe(true);
  expect(confirm.html).toContain(`${clientName} sent you here to finish signing out.`);
  return { confirm, done: await browser.confirmSignOut(confirm) };
}

/** After a logout: Akamon keeps no session of the account, and a sign-in begun at `start` asks for the account again. */
export async function expectSignedOutAtAkamon(akamon: RunningAkamon, browser: NavigatingBrowser, accountId: string, start: string): Promise<void> {
  expect(await akamonSessions(akamon, accountId)).toEqual([]);
  const again = await browser.browse(start);
  expect(again.url.startsWith(`${akamon.url}/interaction/`)).toBe(true);
  expect(again.html).toMatch(/name="(account|identifier|password)"/);
}

/**
 * A sign-in at such an app (at its `/login`) by a new account the client denies: Akamon's refusal
 * reaches the app's callback as access_denied, answered 400. Answers the app's page and the browser.
 */
export async function deniedAtApp(akamon: RunningAkamon, clientId: string, origin: string): Promise<{ browser: NavigatingBrowser; page: Page }> {
  const account = await akamon.createReadyAccount();
  await denyAccount(akamon, clientId, account.commonId);
  const browser = new NavigatingBrowser(akamon.url);
  const { page } = await browser.refused(`${origin}/login`, account);
  expect(page.url.startsWith(`${origin}/callback?error=access_denied&`)).toBe(true);
  expect(page.status).toBe(400);
  return { browser, page };
}
