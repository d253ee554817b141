import { execFile } from 'node:child_process';
import { pageVariables } from './sp-window.ts';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ATTRIBUTE } from '../../src/saml/constants.ts';
import { type ApacheSp, quoted, startApacheSp } from './apache-sp.ts';
import { APACHE, APACHE_MODULES } from './relying-party.ts';

/**
 * A SAML service provider that is not Akamon's code: Debian's Apache httpd with mod_auth_mellon
 * 0.18 on 127.0.0.1, set up as its README and `mellon_create_metadata` set one up, in front of a
 * protected location whose page shows what mellon received from the identity provider.
 */

const MELLON_CREATE_METADATA = '/usr/sbin/mellon_create_metadata';

/** What the SP needs, each by a file it installs (for missingPackage); mellon_create_metadata runs openssl. */
export const MELLON_PACKAGES = {
  [APACHE]: 'apache2',
  [`${APACHE_MODULES}/mod_auth_mellon.so`]: 'libapache2-mod-auth-mellon',
  [MELLON_CREATE_METADATA]: 'libapache2-mod-auth-mellon',
  '/usr/bin/openssl': 'openssl',
};

/** mellon's endpoints (its MellonEndpointPath): metadata, postResponse (the ACS), logout (SLO), login. */
const MELLON_ENDPOINT_PATH = '/mellon';

export interface MellonSpOptions {
  /** The IdP's metadata: an EntityDescriptor with an IDPSSODescriptor (Akamon serves it at `<issuer>/saml/metadata`). */
  idpMetadataXml: string;
  /** The SP's entityID; by default `<url>/mellon/metadata`, where mellon publishes its metadata. */
  entityId?: string;
  /** The location that requires a signed-in person; its page is the attribute page. Default `/protected/`. */
  protectedPath?: string;
  /**
   * Names for attributes on the page (`MellonSetEnv`, as an operator writes them): name to show →
   * the SAML Attribute's Name. By default the names of the eduPerson, inetOrgPerson, Subject
   * Identifier and GakuNin attributes (src/saml/constants.ts ATTRIBUTE: `mail` for
   * `urn:oid:0.9.2342.19200300.100.1.3`). An attribute without one shows under its Name with every
   * character but letters, digits and `_` turned into `_`: Apache does that to the variable names
   * it passes to a CGI program.
   */
  attributeNames?: Record<string, string>;
}

/**
 * The SP: its metadata is the one mellon_create_metadata wrote, as mellon uses and serves it
 * (`<url>/mellon/metadata`); its logout goes over the IdP's HTTP-Redirect SLO endpoint.
 */
export type MellonSp = ApacheSp;

/**
 * The attribute page: a CGI shell script (mod_cgi, in apache2-bin: no package beyond Apache, and a
 * CGI program gets exactly the variables mellon sets for the request) printing REMOTE_USER and
 * every MELLON_ variable, one `name=value` a line.
 */
const ATTRIBUTE_PAGE = `#!/bin/sh
printf 'Content-Type: text/plain; charset=utf-8\\n\\n'
printf 'REMOTE_USER=%s\\n' "$REMOTE_USER"
env | grep '^MELLON_' | grep -v '^MELLON_DISABLE_SAMESITE=' | LC_ALL=C sort
`;

/** Makes the SP's key, certificate and metadata as an operator does (in `dir`, an empty directory): the three files. */
async function createMetadata(dir: string, entityId: string, endpointUrl: string): Promise<{ key: string; cert: string; metadata: string }> {
  // It names the files after the entityID (<entityID as a file name>.key, .cert, .xml) in its working directory.
  await promisify(execFile)(MELLON_CREATE_METADATA, [entityId, endpointUrl], { cwd: dir });
  const file = (extension: string) => {
    const found = fs.readdirSync(dir).filter((name) => name.endsWith(extension));
    if (found.length !== 1) throw new Error(`mellon_create_metadata wrote ${found.length} ${extension} files in ${dir}`);
    return path.join(dir, found[0]);
  };
  return { key: file('.key'), cert: file('.cert'), metadata: file('.xml') };
}

/** The Apache configuration of the SP: mellon on the whole site, sign-in required at the protected path. */
function siteConfig(files: { key: string; cert: string; metadata: string; idpMetadata: string; lock: string }, options: { protectedPath: string; attributeNames: Record<string, string> }): string {
  return [
    `MellonLockFile ${quoted(files.lock)}`,
    // mellon marks its "cookietest" cookie (set before it sends a person to the IdP, required back
    // with the response) SameSite=None, and a browser refuses SameSite=None without Secure: on plain
    // http chromium drops it and mellon answers the response with 400. This variable (mellon's own
    // switch for browsers that mishandle SameSite) leaves the attribute out; set before mellon runs.
    'SetEnvIf Request_URI ^/ MELLON_DISABLE_SAMESITE=1',
    '<Location />',
    // "info": the endpoints work everywhere, sign-in is required only where "auth" says so.
    '  MellonEnable info',
    `  MellonEndpointPath ${MELLON_ENDPOINT_PATH}`,
    `  MellonSPPrivateKeyFile ${quoted(files.key)}`,
    `  MellonSPCertFile ${quoted(files.cert)}`,
    `  MellonSPMetadataFile ${quoted(files.metadata)}`,
    `  MellonIdPMetadataFile ${quoted(files.idpMetadata)}`,
    // Plain http on loopback: HttpOnly without Secure, or the browser would not send the cookie back.
    '  MellonSecureCookie httponly',
    // An IdP-initiated sign-in without a RelayState lands on the attribute page.
    `  MellonDefaultLoginPath ${options.protectedPath}`,
    // The page shows which IdP answered (MELLON_IDP) and, per attribute, how many values it has (MELLON_x_N).
    '  MellonIdP IDP',
    '  MellonEnvVarsSetCount On',
    ...Object.entries(options.attributeNames).map(([name, samlName]) => `  MellonSetEnv ${quoted(name)} ${quoted(samlName)}`),
    '</Location>',
    `<Location ${options.protectedPath}>`,
    '  AuthType Mellon',
    '  MellonEnable auth',
    '  Require valid-user',
    '</Location>',
  ].join('\n');
}

/**
 * Starts the SP on a free port with a new key and certificate (mellon_create_metadata), `idpMetadataXml`
 * as its only IdP, and a public page at `/` ("Public page", a ReturnTo for logout).
 */
export function startMellonSp(options: MellonSpOptions): Promise<MellonSp> {
  const protectedPath = options.protectedPath ?? '/protected/';
  return startApacheSp({
    name: 'mellon',
    idpMetadataXml: options.idpMetadataXml,
    protectedPath,
    attributePage: ATTRIBUTE_PAGE,
    async setUp({ dir, url, idpMetadata }) {
      const endpointUrl = `${url}${MELLON_ENDPOINT_PATH}`;
      const entityId = options.entityId ?? `${endpointUrl}/metadata`;
      // The key stays root's: mellon reads it while Apache reads its configuration.
      const spDir = path.join(dir, 'sp');
      fs.mkdirSync(spDir);
      const sp = await createMetadata(spDir, entityId, endpointUrl);
      const files = { ...sp, idpMetadata, lock: path.join(dir, 'mellon.lock') };
      return {
        entityId,
        acsUrl: `${endpointUrl}/postResponse`,
        logoutUrl: (returnTo) => `${endpointUrl}/logout?ReturnTo=${encodeURIComponent(returnTo)}`,
        modules: ['setenvif', 'auth_mellon'],
        site: siteConfig(files, { protectedPath, attributeNames: options.attributeNames ?? ATTRIBUTE }),
        metadataXml: async () => fs.readFileSync(sp.metadata, 'utf8'),
      };
    },
  });
}

/** What the attribute page shows. */
export interface MellonPage {
  /** REMOTE_USER: mellon's MellonUser, by default the NameID. */
  remoteUser: string;
  /** MELLON_NAME_ID: the Subject's NameID value. */
  nameId: string;
  /** MELLON_IDP: the entityID of the IdP that answered. */
  idp: string;
  /**
   * Each attribute of the assertion by its name on the page, with all its values in order, as mellon
   * passes them on: XML-escaped (lasso dumps the AttributeValue's content, so `&` arrives as `&amp;`).
   */
  attributes: Record<string, string[]>;
}

/** What mellon itself puts among the attributes: the NameID, the assertion's ID and (MellonIdP) the IdP. */
const MELLON_OWN = new Set(['NAME_ID', 'ASSERTION_ID', 'IDP']);

/** Reads the attribute page. Each attribute X comes as MELLON_X (first value), MELLON_X_0.. (each value) and MELLON_X_N (the count). */
export function readMellonPage(text: string): MellonPage {
  const variables = pageVariables(text);
  const attributes: Record<string, string[]> = {};
  for (const [name, count] of variables) {
    const attribute = /^MELLON_(.+)_N$/.exec(name)?.[1];
    if (attribute === undefined || MELLON_OWN.has(attribute)) continue;
    attributes[attribute] = Array.from({ length: Number(count) }, (_, i) => variables.get(`MELLON_${attribute}_${i}`) ?? '');
  }
  return { remoteUser: variables.get('REMOTE_USER') ?? '', nameId: variables.get('MELLON_NAME_ID') ?? '', idp: variables.get('MELLON_IDP') ?? '', attributes };
}
