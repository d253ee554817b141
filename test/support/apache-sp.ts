import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './processes.ts';
import { type RelyingPartyProcess, startApache } from './relying-party.ts';
import type { SpUnderTest } from './sp-window.ts';

/**
 * What the SAML SPs in Apache httpd (mod_auth_mellon, Shibboleth's mod_shib) share: a directory of
 * their own, the IdP's metadata in a file, an attribute page (a CGI script) at the protected path,
 * a public page at `/`, and Apache with the SAML module's part of the configuration.
 */

/** A SAML SP in Apache on 127.0.0.1, as the tests drive it. */
export interface ApacheSp extends SpUnderTest {
  /** http://127.0.0.1:port */
  url: string;
  entityId: string;
  /** The SP's metadata as the SP itself made it: what an operator registers. */
  metadataXml: string;
  /** The protected page: it sends a person to the IdP, and once signed in shows the attribute page. */
  protectedUrl: string;
  /** The assertion consumer service (HTTP-POST). */
  acsUrl: string;
  /** SP-initiated logout: the SP sends a LogoutRequest to the IdP and, once answered, goes to `returnTo`. */
  logoutUrl(returnTo: string): string;
  /** The SP's output and logs (Apache's, and the module's own), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** The SAML module's part of an SP, made in the SP's directory once its address is known. */
export interface SpModule {
  entityId: string;
  acsUrl: string;
  logoutUrl(returnTo: string): string;
  /** Apache modules it needs besides alias and cgi (which serve the attribute page). */
  modules: string[];
  /** Its Apache directives, the protected location's included. */
  site: string;
  /** Its metadata, read once Apache runs (mod_shib serves it only then). */
  metadataXml(apache: RelyingPartyProcess): Promise<string>;
  /** Its own output and logs, printed before Apache's. */
  output?(): string;
}

/** A value in double quotes for an Apache configuration file. */
export const quoted = (value: string) => `"${value.replace(/["\\]/g, '\\$&')}"`;

/**
 * Starts an SP on a free port in a new directory (`name` in its name) with `idpMetadataXml` as its
 * only IdP and `attributePage` at every URL under `protectedPath`; `setUp` adds the module's files,
 * processes (their stops given to `onStop`) and configuration. Stopping it stops them all, Apache
 * first, and removes the directory; so does a failure to start.
 */
export async function startApacheSp(options: {
  name: string;
  idpMetadataXml: string;
  protectedPath: string;
  attributePage: string;
  setUp(sp: { dir: string; url: string; idpMetadata: string; onStop(step: () => Promise<unknown>): void }): Promise<SpModule>;
}): Promise<ApacheSp> {
  const { protectedPath } = options;
  if (!/^\/([\w-]+\/)+$/.test(protectedPath)) throw new Error(`protectedPath must be a path such as /protected/, not ${protectedPath}`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `akamon-${options.name}-`));
  const stops: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    // The Apache workers (www-data) read what the module hands them and run the page; the keys stay the test's.
    fs.chmodSync(dir, 0o755);
    const idpMetadata = path.join(dir, 'idp-metadata.xml');
    const page = path.join(dir, 'attributes.cgi');
    fs.writeFileSync(idpMetadata, options.idpMetadataXml);
    fs.writeFileSync(page, options.attributePage, { mode: 0o755 });
    const module = await options.setUp({ dir, url, idpMetadata, onStop: (step) => stops.push(step) });
    const apache = await startApache({
      port,
      modules: ['alias', 'cgi', ...module.modules],
      // Every URL under the protected path is the attribute page (protectedPath has no regular-expression characters).
      site: () => [`ScriptAliasMatch ${quoted(`^${protectedPath}`)} ${quoted(page)}`, module.site].join('\n'),
      pages: { 'index.html': '<p>Public page</p>\n' },
    });
    stops.push(() => apache.stop());
    return {
      url,
      entityId: module.entityId,
      metadataXml: await module.metadataXml(apache),
      protectedUrl: `${url}${protectedPath}`,
      acsUrl: module.acsUrl,
      logoutUrl: module.logoutUrl,
      output: () => (module.output ? `${module.output()}\nApache:\n${apache.output()}` : apache.output()),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
