import { execFile, spawn } from 'node:child_process';
import { pageVariables } from './sp-window.ts';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ATTRIBUTE, NAMEID_FORMAT } from '../../src/saml/constants.ts';
import { type ApacheSp, quoted, startApacheSp } from './apache-sp.ts';
import { freePort, watchProcess } from './processes.ts';
import { APACHE, APACHE_MODULES } from './relying-party.ts';

/**
 * The SAML SP most universities run, not Akamon's code: Debian's Shibboleth SP 3 (shibd and
 * Apache's mod_shib) on 127.0.0.1, with a configuration of its own in a temporary directory instead
 * of /etc/shibboleth, in front of a protected location whose page shows what the SP received.
 */

const SHIBD = '/usr/sbin/shibd';
/** The files of Debian's default configuration this one reuses as they are (error templates, policies). */
const SHIBBOLETH_ETC = '/etc/shibboleth';

/** What the SP needs, each by a file it installs (for missingPackage); the key is made with openssl. */
export const SHIBBOLETH_PACKAGES = {
  [APACHE]: 'apache2',
  [`${APACHE_MODULES}/mod_shib.so`]: 'libapache2-mod-shib',
  [SHIBD]: 'shibboleth-sp-utils',
  [`${SHIBBOLETH_ETC}/attribute-policy.xml`]: 'shibboleth-sp-common',
  '/usr/bin/openssl': 'openssl',
};

/** The SP's handlers (its handlerURL, the default): Metadata, SAML2/POST (the ACS), Logout, SLO/... */
const HANDLER_PATH = '/Shibboleth.sso';

/**
 * Attribute IDs, as the SP's attribute-map.xml names the attributes Akamon sends (src/saml/constants.ts
 * ATTRIBUTE): those of Shibboleth's default attribute-map.xml (`eppn`, `affiliation`...), with the
 * default file's commented-out `mail`, `displayName`, `givenName`, `sn` and the GakuNin `jaDisplayName`.
 */
const ATTRIBUTE_MAP: Record<string, { name: string; scoped?: boolean }> = {
  eppn: { name: ATTRIBUTE.eduPersonPrincipalName, scoped: true },
  affiliation: { name: ATTRIBUTE.eduPersonScopedAffiliation, scoped: true },
  'unscoped-affiliation': { name: ATTRIBUTE.eduPersonAffiliation },
  entitlement: { name: ATTRIBUTE.eduPersonEntitlement },
  'subject-id': { name: ATTRIBUTE.subjectId, scoped: true },
  'pairwise-id': { name: ATTRIBUTE.pairwiseId, scoped: true },
  mail: { name: ATTRIBUTE.mail },
  displayName: { name: ATTRIBUTE.displayName },
  givenName: { name: ATTRIBUTE.givenName },
  sn: { name: ATTRIBUTE.sn },
  jaDisplayName: { name: ATTRIBUTE.jaDisplayName },
};

/** The persistent NameID as the default attribute-map.xml maps it: `<IdP entityID>!<SP entityID>!<value>`. */
const PERSISTENT_ID = 'persistent-id';

/** The variables the SP sets besides the attributes (as a CGI program sees them: `-` turned into `_`). */
const SHIB_OWN = ['Shib_Identity_Provider', 'Shib_AuthnContext_Class'];

export interface ShibbolethSpOptions {
  /** The IdP's metadata: an EntityDescriptor with an IDPSSODescriptor (Akamon serves it at `<issuer>/saml/metadata`). */
  idpMetadataXml: string;
  /** The SP's entityID; by default `<url>/shibboleth`, as the Shibboleth documentation names SPs. */
  entityId?: string;
  /** The location that requires a signed-in person; its page is the attribute page. Default `/secure/`. */
  protectedPath?: string;
}

const escapeXml = (value: string) => value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

function attributeMap(): string {
  const lines = Object.entries(ATTRIBUTE_MAP).map(([id, { name, scoped }]) =>
    scoped ? `  <Attribute name="${name}" id="${id}"><AttributeDecoder xsi:type="ScopedAttributeDecoder" caseSensitive="false"/></Attribute>` : `  <Attribute name="${name}" id="${id}"/>`,
  );
  return [
    '<Attributes xmlns="urn:mace:shibboleth:2.0:attribute-map" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
    ...lines,
    `  <Attribute name="${NAMEID_FORMAT.persistent}" id="${PERSISTENT_ID}">`,
    '    <AttributeDecoder xsi:type="NameIDAttributeDecoder" formatter="$NameQualifier!$SPNameQualifier!$Name" defaultQualifiers="true"/>',
    '  </Attribute>',
    '</Attributes>',
    '',
  ].join('\n');
}

/** A log4shib configuration writing everything from `level` up to the file `log` (standard output would reach the test only when its buffer fills). */
const fileLogger = (level: string, log: string) =>
  [
    `log4j.rootCategory=${level}, file`,
    'log4j.appender.file=org.apache.log4j.FileAppender',
    `log4j.appender.file.fileName=${log}`,
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=%d{%H:%M:%S} %p %c %x: %m%n',
    '',
  ].join('\n');

/**
 * shibboleth2.xml: the default file's settings, with the paths of this directory, shibd on a TCP
 * port of loopback (the Apache workers run as www-data, shibd as the test's user), plain http
 * (handlerSSL and cookieProps), Akamon as the one IdP from a metadata file, and one key for signing
 * and encryption. The policies and error templates are the package's own.
 */
function shibbolethConfig(
  files: Record<'key' | 'cert' | 'idpMetadata' | 'attributeMap' | 'shibdLogger' | 'nativeLogger', string>,
  options: { entityId: string; idpEntityId: string; shibdPort: number },
): string {
  const attr = (value: string) => `"${escapeXml(value)}"`;
  return `<SPConfig xmlns="urn:mace:shibboleth:3.0:native:sp:config" xmlns:conf="urn:mace:shibboleth:3.0:native:sp:config" clockSkew="180">
  <OutOfProcess logger=${attr(files.shibdLogger)}/>
  <InProcess logger=${attr(files.nativeLogger)}/>
  <TCPListener address="127.0.0.1" port="${options.shibdPort}" acl="127.0.0.1"/>
  <ApplicationDefaults entityID=${attr(options.entityId)} REMOTE_USER="eppn subject-id pairwise-id persistent-id">
    <Sessions lifetime="28800" timeout="3600" relayState="ss:mem" checkAddress="false" handlerSSL="false" cookieProps="http" redirectLimit="exact">
      <SSO entityID=${attr(options.idpEntityId)}>SAML2</SSO>
      <Logout>SAML2 Local</Logout>
      <Handler type="MetadataGenerator" Location="/Metadata" signing="false"/>
      <Handler type="Status" Location="/Status" acl="127.0.0.1 ::1"/>
      <Handler type="Session" Location="/Session" showAttributeValues="false"/>
    </Sessions>
    <Errors supportContact="root@localhost"/>
    <MetadataProvider type="XML" validate="true" path=${attr(files.idpMetadata)}/>
    <AttributeExtractor type="XML" validate="true" reloadChanges="false" path=${attr(files.attributeMap)}/>
    <AttributeFilter type="XML" validate="true" path="${SHIBBOLETH_ETC}/attribute-policy.xml"/>
    <CredentialResolver type="File" key=${attr(files.key)} certificate=${attr(files.cert)}/>
  </ApplicationDefaults>
  <SecurityPolicyProvider type="XML" validate="true" path="${SHIBBOLETH_ETC}/security-policy.xml"/>
  <ProtocolProvider type="XML" validate="true" reloadChanges="false" path="${SHIBBOLETH_ETC}/protocols.xml"/>
</SPConfig>
`;
}

/**
 * The attribute page: a CGI shell script (mod_cgi; `ShibUseEnvironment On` hands a CGI program the
 * attributes as variables) printing REMOTE_USER, the SP's own Shib_ variables and each attribute,
 * one `name=value` a line (several values of one attribute joined with `;`).
 */
function attributePage(): string {
  const names = ['REMOTE_USER', ...SHIB_OWN, ...[...Object.keys(ATTRIBUTE_MAP), PERSISTENT_ID].map((id) => id.replace(/-/g, '_'))];
  return `#!/bin/sh
printf 'Content-Type: text/plain; charset=utf-8\\n\\n'
${names.map((name) => `[ -n "$${name}" ] && printf '%s=%s\\n' ${name} "$${name}"`).join('\n')}
exit 0
`;
}

/** The Apache configuration: mod_shib with this directory's shibboleth2.xml, its handlers, and a session required at the protected path. */
function siteConfig(config: string, protectedPath: string): string {
  return [
    // Debian's shib.load: the module's structure is named mod_shib, not shib_module as startApache's modules are.
    `LoadModule mod_shib ${APACHE_MODULES}/mod_shib.so`,
    `ShibConfig ${quoted(config)}`,
    // As Debian's shib.conf sets it.
    'ShibCompatValidUser Off',
    `<Location ${HANDLER_PATH}>`,
    '  SetHandler shib',
    '  AuthType None',
    '  Require all granted',
    '</Location>',
    `<Location ${protectedPath}>`,
    '  AuthType shibboleth',
    '  ShibRequestSetting requireSession true',
    '  ShibUseEnvironment On',
    '  ShibUseHeaders Off',
    '  Require valid-user',
    '</Location>',
  ].join('\n');
}

/** A new RSA key and self-signed certificate, as shib-keygen makes them (without its chown to _shibd). */
async function newKey(dir: string, host: string): Promise<{ key: string; cert: string }> {
  const key = path.join(dir, 'sp-key.pem');
  const cert = path.join(dir, 'sp-cert.pem');
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:3072', '-nodes', '-sha256', '-days', '2', '-subj', `/CN=${host}`, '-keyout', key, '-out', cert]);
  return { key, cert };
}

/**
 * Starts shibd (in the foreground, its configuration checked first) and Apache with mod_shib on free
 * ports, with a new key and certificate, `idpMetadataXml` as the only IdP, and a public page at `/`
 * ("Public page", a return address for logout); answers once the SP serves its metadata (its
 * MetadataGenerator handler's, `<url>/Shibboleth.sso/Metadata`).
 */
export function startShibbolethSp(options: ShibbolethSpOptions): Promise<ApacheSp> {
  const protectedPath = options.protectedPath ?? '/secure/';
  const idpEntityId = /entityID="([^"]+)"/.exec(options.idpMetadataXml)?.[1];
  if (!idpEntityId) return Promise.reject(new Error('The IdP metadata has no entityID'));
  return startApacheSp({
    name: 'shibboleth',
    idpMetadataXml: options.idpMetadataXml,
    protectedPath,
    attributePage: attributePage(),
    async setUp({ dir, url, idpMetadata, onStop }) {
      const entityId = options.entityId ?? `${url}/shibboleth`;
      const shibdPort = await freePort();
      const files = {
        ...(await newKey(dir, '127.0.0.1')),
        config: path.join(dir, 'shibboleth2.xml'),
        idpMetadata,
        attributeMap: path.join(dir, 'attribute-map.xml'),
        shibdLogger: path.join(dir, 'shibd.logger'),
        nativeLogger: path.join(dir, 'native.logger'),
      };
      fs.writeFileSync(files.attributeMap, attributeMap());
      const logs = { shibd: path.join(dir, 'shibd.log'), native: path.join(dir, 'native.log') };
      fs.writeFileSync(files.shibdLogger, fileLogger('INFO', logs.shibd));
      fs.writeFileSync(files.nativeLogger, fileLogger('WARN', logs.native));
      // mod_shib logs from the Apache workers (www-data).
      fs.writeFileSync(logs.native, '', { mode: 0o666 });
      fs.chmodSync(logs.native, 0o666);
      const readLogs = () =>
        Object.entries(logs)
          .map(([name, log]) => `${name}.log:\n${fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : ''}`)
          .join('\n');
      fs.writeFileSync(files.config, shibbolethConfig(files, { entityId, idpEntityId, shibdPort }));

      // shibd -t checks the configuration: its refusal names the file and the line, where a shibd that exits at start says little.
      await promisify(execFile)(SHIBD, ['-t', '-c', files.config]).catch((error: { stdout?: string; stderr?: string }) => {
        throw new Error(`shibd -t refused the configuration:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
      });
      const shibd = watchProcess(spawn(SHIBD, ['-F', '-f', '-c', files.config, '-p', path.join(dir, 'shibd.pid')], { stdio: ['ignore', 'pipe', 'pipe'] }), 'shibd');
      onStop(() => shibd.stop());
      const output = () => `shibd:\n${shibd.output()}\n${readLogs()}`;
      return {
        entityId,
        acsUrl: `${url}${HANDLER_PATH}/SAML2/POST`,
        logoutUrl: (returnTo) => `${url}${HANDLER_PATH}/Logout?return=${encodeURIComponent(returnTo)}`,
        modules: [],
        site: siteConfig(files.config, protectedPath),
        output,
        // mod_shib answers its handlers through shibd: the metadata is there once both run.
        async metadataXml(apache) {
          const metadataUrl = `${url}${HANDLER_PATH}/Metadata`;
          let metadataXml = '';
          for (let attempt = 0; attempt < 50 && !metadataXml.includes('SPSSODescriptor'); attempt += 1) {
            const answer = await fetch(metadataUrl).catch(() => undefined);
            metadataXml = answer?.ok ? await answer.text() : '';
            if (!metadataXml.includes('SPSSODescriptor')) await new Promise((resolve) => setTimeout(resolve, 200));
          }
          if (!metadataXml.includes('SPSSODescriptor')) throw new Error(`The SP served no metadata at ${metadataUrl}:\n${output()}\n${apache.output()}`);
          return metadataXml;
        },
      };
    },
  });
}

/** What the attribute page shows. */
export interface ShibbolethPage {
  /** REMOTE_USER: the first of the REMOTE_USER attributes the SP has (eppn, subject-id, pairwise-id, persistent-id). */
  remoteUser: string;
  /** Shib-Identity-Provider: the entityID of the IdP that answered. */
  idp: string;
  /** Shib-AuthnContext-Class: the assertion's AuthnContextClassRef. */
  authnContext: string;
  /** Each attribute the SP kept (after its attribute policy) by its ID, with its values. */
  attributes: Record<string, string[]>;
}

/** Reads the attribute page; the SP joins several values with `;` (escaping a `;` inside one as `\;`). */
export function readShibbolethPage(text: string): ShibbolethPage {
  const variables = pageVariables(text);
  const attributes: Record<string, string[]> = {};
  for (const id of [...Object.keys(ATTRIBUTE_MAP), PERSISTENT_ID]) {
    const value = variables.get(id.replace(/-/g, '_'));
    if (value !== undefined) attributes[id] = value.split(/(?<!\\);/).map((part) => part.replace(/\\;/g, ';'));
  }
  return { remoteUser: variables.get('REMOTE_USER') ?? '', idp: variables.get('Shib_Identity_Provider') ?? '', authnContext: variables.get('Shib_AuthnContext_Class') ?? '', attributes };
}
