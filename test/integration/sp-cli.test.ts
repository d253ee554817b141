import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { generateServiceProviderMetadata } from '@node-saml/node-saml';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { freePort, runCli, type ScriptResult } from '../support/processes.ts';
import { block, cliArguments, fill, recipeBlocks } from '../support/recipes.ts';
import { testKeyPair, type TestKeyPair } from '../support/saml-keys.ts';

// Issue 17, point 7: `akamon sp create|show|list|update|delete` as an operator runs them, the CLI a
// child process talking to Akamon over HTTP, with SP metadata made here by an independent SAML
// library (@node-saml/node-saml) and read from a file or from an http server on loopback; then the
// `akamon sp create` lines of the recipes in docs/service-providers/, run as they are written. What
// was stored is read from the database.

const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

let akamon: RunningAkamon;
let work: string;
/** The SP's signing key and, for the metadata that offers encryption, a second key. */
let signing: TestKeyPair;
let encryption: TestKeyPair;
/** A loopback web server for metadata: the documents by path, and the paths asked for. */
let metadataServer: http.Server;
let metadataUrl: string;
const published = new Map<string, string>();
const fetched: string[] = [];

const cli = (args: string[], env: Record<string, string> = {}) => runCli({ url: akamon.url, token: akamon.operatorToken }, args, env);

async function json<T = any>(args: string[]): Promise<T> {
  const r = await cli([...args, '--json']);
  if (r.code !== 0) throw new Error(`akamon ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

/** A refusal as the CLI must give it: its exit code, one line "akamon: ..." on stderr, nothing on stdout. */
function expectRefused(r: ScriptResult, code: 1 | 2, pattern: RegExp): void {
  expect({ code: r.code, stderr: lines(r.stderr), stdout: r.stdout }).toEqual({ code, stderr: [expect.stringMatching(/^akamon: /)], stdout: '' });
  expect(r.stderr).toMatch(pattern);
}

/** `run` over `items`, at most `n` at a time (each CLI is a Node process), the results in order. */
async function inTurns<T, R>(items: T[], n: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += n) results.push(...(await Promise.all(items.slice(i, i + n).map(run))));
  return results;
}

/** The client row as stored. */
const stored = (clientId: string) =>
  akamon.deps.database.db.selectFrom('client').select(['client_id', 'protocol', 'saml', 'name', 'client_secret_enc']).where('client_id', '=', clientId).executeTakeFirst();

const samlOf = async (clientId: string) => (await stored(clientId))?.saml as Record<string, any> | null | undefined;

/** An SP's metadata as @node-saml/node-saml writes it: a signing certificate, and an encryption one when asked. */
function spMetadata(entityId: string, acsUrl: string, options: { encrypts?: boolean; sloUrl?: string } = {}): string {
  return generateServiceProviderMetadata({
    issuer: entityId,
    callbackUrl: acsUrl,
    logoutCallbackUrl: options.sloUrl,
    privateKey: signing.privatePem,
    publicCerts: signing.certificatePem,
    ...(options.encrypts ? { decryptionPvk: encryption.privatePem, decryptionCert: encryption.certificatePem } : {}),
    wantAssertionsSigned: true,
  });
}

async function writeFile(name: string, text: string): Promise<string> {
  const file = path.join(work, name);
  await fs.writeFile(file, text);
  return file;
}

/** Publishes a document on the loopback server: its URL. */
function publish(pathname: string, xml: string): string {
  published.set(pathname, xml);
  return `${metadataUrl}${pathname}`;
}

beforeAll(async () => {
  akamon = await startAkamon({ env: { AKAMON_REALM_SUFFIX: 'utac.example.ac.jp' } });
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'akamon-sp-cli-'));
  [signing, encryption] = await Promise.all([testKeyPair('rsa', 'sp.example.ac.jp'), testKeyPair('rsa', 'sp.example.ac.jp')]);
  metadataServer = http.createServer((request, response) => {
    fetched.push(request.url ?? '');
    const xml = published.get(request.url ?? '');
    response.writeHead(xml === undefined ? 404 : 200, { 'content-type': 'application/samlmetadata+xml' }).end(xml ?? 'not here');
  });
  await new Promise<void>((resolve) => metadataServer.listen(0, '127.0.0.1', resolve));
  metadataUrl = `http://127.0.0.1:${(metadataServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => metadataServer?.close(resolve));
  await akamon?.close();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('akamon sp', () => {
  const LIBRARY = { entityId: 'https://library.example.ac.jp/saml', acsUrl: 'https://library.example.ac.jp/saml/acs' };
  const PORTAL = { entityId: 'https://portal.example.ac.jp/sp', acsUrl: 'https://portal.example.ac.jp/sp/acs' };
  let oidcClientId: string;

  test('create from a metadata file: the entityID is the ID, the row is a SAML client holding what the metadata said', async () => {
    const file = await writeFile('library.xml', spMetadata(LIBRARY.entityId, LIBRARY.acsUrl, { sloUrl: 'https://library.example.ac.jp/saml/logout' }));
    const created = await cli(['sp', 'create', '--name', 'Library', '--metadata', file, '--attributes', 'mail,displayName', '--require-mfa']);
    expect({ code: created.code, stdout: lines(created.stdout), stderr: created.stderr }).toEqual({ code: 0, stdout: [`Registered service provider ${LIBRARY.entityId} (Library).`], stderr: '' });

    const row = await stored(LIBRARY.entityId);
    expect(row).toMatchObject({ protocol: 'saml', name: 'Library', client_secret_enc: null });
    expect(row!.saml).toMatchObject({
      nameIdFormat: 'persistent',
      signed: 'both',
      encryptAssertions: false,
      attributes: ['mail', 'displayName'],
      spMetadata: {
        entityId: LIBRARY.entityId,
        acs: [{ binding: POST, location: LIBRARY.acsUrl, index: 1, isDefault: true }],
        slo: [{ binding: POST, location: 'https://library.example.ac.jp/saml/logout' }],
        signingCertificates: [expect.stringContaining('BEGIN CERTIFICATE')],
        encryptionCertificates: [],
        authnRequestsSigned: true,
      },
    });
    expect((await json(['sp', 'show', LIBRARY.entityId])).requireMfa).toBe(true);
  });

  test('create from an http URL on loopback: the CLI fetches it once; --json answers the entityID and no secret', async () => {
    const url = publish('/portal/metadata', spMetadata(PORTAL.entityId, PORTAL.acsUrl, { encrypts: true }));
    const before = fetched.length;
    const created = await json(['sp', 'create', '--name', 'Portal', '--metadata', url]);
    expect(created).toEqual({ clientId: PORTAL.entityId, clientSecret: null });
    expect(fetched.slice(before)).toEqual(['/portal/metadata']);
    expect(await samlOf(PORTAL.entityId)).toMatchObject({ spMetadata: { acs: [expect.objectContaining({ location: PORTAL.acsUrl })], encryptionCertificates: [expect.any(String)] } });
  });

  test('show: the Entity ID, the consumer service and the SAML settings under their labels, none of an OIDC client', async () => {
    const shown = await cli(['sp', 'show', LIBRARY.entityId]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^Entity ID:\\s+${LIBRARY.entityId}$`, 'm'));
    expect(shown.stdout).toMatch(/^Name:\s+Library$/m);
    expect(shown.stdout).toMatch(
      new RegExp(`^SAML metadata:\\s+ACS 1 \\(default\\) HTTP-POST ${LIBRARY.acsUrl}, SLO HTTP-POST https://library.example.ac.jp/saml/logout, 1 signing and 0 encryption certificate\\(s\\)$`, 'm'),
    );
    expect(shown.stdout).toMatch(/^NameID:\s+persistent$/m);
    expect(shown.stdout).toMatch(/^Signed:\s+both$/m);
    expect(shown.stdout).toMatch(/^Attributes:\s+mail, displayName$/m);
    expect(shown.stdout).toMatch(/^Requires MFA:\s+yes$/m);
    for (const label of ['Client ID', 'Redirect URIs', 'Client authentication', 'Type']) expect(shown.stdout).not.toMatch(new RegExp(`^${label}:`, 'm'));

    const asJson = await json(['sp', 'show', LIBRARY.entityId]);
    expect(asJson).toMatchObject({ clientId: LIBRARY.entityId, protocol: 'saml', name: 'Library', nameIdFormat: 'persistent', attributes: ['mail', 'displayName'] });
    expect(asJson.spMetadata.acs[0].location).toBe(LIBRARY.acsUrl);
  });

  test('list shows only the service providers, and client list only the OIDC clients', async () => {
    oidcClientId = (await json(['client', 'create', '--name', 'Wiki', '--redirect-uri', 'https://wiki.example.ac.jp/cb'])).clientId;
    const sps = await json<Array<{ clientId: string; protocol: string }>>(['sp', 'list']);
    expect(sps.map((c) => c.clientId).sort()).toEqual([LIBRARY.entityId, PORTAL.entityId].sort());
    expect(sps.every((c) => c.protocol === 'saml')).toBe(true);
    const clients = await json<Array<{ clientId: string; protocol: string }>>(['client', 'list']);
    expect(clients.map((c) => c.clientId)).toContain(oidcClientId);
    expect(clients.some((c) => c.protocol !== 'oidc' || c.clientId === LIBRARY.entityId)).toBe(false);

    const table = lines((await cli(['sp', 'list'])).stdout);
    expect(table[0]).toMatch(/^ENTITY ID\s+NAMEID\s+NAME$/);
    expect(table).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${LIBRARY.entityId}\\s+persistent\\s+Library$`))]));
    expect(table.join('\n')).not.toContain(oidcClientId);
    expect((await cli(['client', 'list'])).stdout).not.toContain(LIBRARY.entityId);
  });

  test('update: attributes, NameID format, signing; --encrypt needs an encryption certificate; new metadata must keep the entityID', async () => {
    const changed = await json(['sp', 'update', LIBRARY.entityId, '--attributes', 'eduPersonPrincipalName,pairwise-id', '--name-id', 'transient', '--sign', 'assertion']);
    expect(changed).toMatchObject({
      clientId: LIBRARY.entityId,
      clientSecret: null,
      client: { attributes: ['eduPersonPrincipalName', 'pairwise-id'], nameIdFormat: 'transient', signed: 'assertion' },
    });
    expect(await samlOf(LIBRARY.entityId)).toMatchObject({ attributes: ['eduPersonPrincipalName', 'pairwise-id'], nameIdFormat: 'transient', signed: 'assertion' });
    const none = await cli(['sp', 'update', LIBRARY.entityId, '--attributes', 'none']);
    expect({ code: none.code, stdout: lines(none.stdout) }).toEqual({ code: 0, stdout: [`Updated service provider ${LIBRARY.entityId}.`] });
    expect((await samlOf(LIBRARY.entityId))!.attributes).toEqual([]);

    // Its metadata has no encryption certificate: refused, and nothing changes.
    const before = await samlOf(LIBRARY.entityId);
    expectRefused(await cli(['sp', 'update', LIBRARY.entityId, '--encrypt']), 1, /encrypted assertions need an encryption certificate/);
    expect(await samlOf(LIBRARY.entityId)).toEqual(before);

    // New metadata of the same entity (a new consumer service, an encryption certificate): accepted, and now --encrypt is.
    const renewed = await writeFile('library-2.xml', spMetadata(LIBRARY.entityId, 'https://library.example.ac.jp/saml/acs2', { encrypts: true }));
    expect((await cli(['sp', 'update', LIBRARY.entityId, '--metadata', renewed, '--encrypt'])).code).toBe(0);
    expect(await samlOf(LIBRARY.entityId)).toMatchObject({
      encryptAssertions: true,
      nameIdFormat: 'transient',
      spMetadata: { entityId: LIBRARY.entityId, acs: [expect.objectContaining({ location: 'https://library.example.ac.jp/saml/acs2' })], encryptionCertificates: [expect.any(String)] },
    });
    expect((await cli(['sp', 'update', LIBRARY.entityId, '--no-encrypt'])).code).toBe(0);

    // Metadata of another entity would rename the SP everywhere (access rules, logs): refused.
    const other = await writeFile('other.xml', spMetadata('https://other.example.ac.jp/saml', 'https://other.example.ac.jp/saml/acs'));
    const kept = await samlOf(LIBRARY.entityId);
    expectRefused(await cli(['sp', 'update', LIBRARY.entityId, '--metadata', other]), 1, /metadata is of another entity/);
    expect(await samlOf(LIBRARY.entityId)).toEqual(kept);
    expect(await stored('https://other.example.ac.jp/saml')).toBeUndefined();

    // The metadata can be replaced, never removed.
    expectRefused(await cli(['sp', 'update', LIBRARY.entityId, '--no-metadata']), 2, /unknown option --no-metadata/);
    expect((await cli(['sp', 'update', '--help'])).stdout).not.toContain('--no-metadata');
  });

  test('bad input: a non-zero exit and one line, never a stack trace, and nothing stored', async () => {
    const notMetadata = await writeFile('notes.txt', 'Slack: ask the vendor for the SAML settings\n');
    const idpMetadata = await writeFile('akamon-idp.xml', await (await fetch(`${akamon.url}/saml/metadata`)).text());
    const redirectOnly = await writeFile(
      'redirect-only.xml',
      spMetadata('https://redirect.example.ac.jp/saml', 'https://redirect.example.ac.jp/saml/acs').replace(POST, 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact'),
    );
    const fresh = await writeFile('fresh.xml', spMetadata('https://fresh.example.ac.jp/saml', 'https://fresh.example.ac.jp/saml/acs'));
    const unanswered = `https://127.0.0.1:${await freePort()}/metadata`;
    const cases: Array<[string[], 1 | 2, RegExp]> = [
      [['sp', 'create', '--name', 'No metadata'], 2, /missing --metadata \(see akamon sp create --help\)$/m],
      [['sp', 'create', '--name', 'Missing', '--metadata', path.join(work, 'missing.xml')], 2, /--metadata: cannot read .*missing\.xml/],
      [['sp', 'create', '--name', 'Notes', '--metadata', notMetadata], 1, /the SAML metadata cannot be used: .*XML/],
      [['sp', 'create', '--name', 'An IdP', '--metadata', idpMetadata], 1, /the SAML metadata cannot be used: .*no service provider/],
      [['sp', 'create', '--name', 'Artifact', '--metadata', redirectOnly], 1, /no assertion consumer service with the HTTP-POST binding/],
      [['sp', 'create', '--name', 'Gone', '--metadata', unanswered], 2, /--metadata: cannot fetch https:\/\/127\.0\.0\.1:\d+\/metadata/],
      [['sp', 'create', '--name', 'Plain', '--metadata', 'http://sp.example.ac.jp/metadata'], 2, /--metadata: fetch metadata over https/],
      [['sp', 'create', '--name', 'Absent', '--metadata', `${metadataUrl}/absent`], 2, /answered 404/],
      [['sp', 'create', '--name', 'Attrs', '--metadata', fresh, '--attributes', 'mail,email'], 1, /attributes must be some of eduPersonPrincipalName/],
      [['sp', 'create', '--name', 'NameID', '--metadata', notMetadata, '--name-id', 'kerberos'], 2, /--name-id must be one of persistent, transient, email, unspecified/],
      [['sp', 'update', LIBRARY.entityId, '--attributes', 'email'], 1, /attributes must be some of/],
      [['sp', 'show', oidcClientId], 1, new RegExp(`${oidcClientId} is not a service provider`)],
      [['sp', 'update', oidcClientId, '--name', 'Renamed'], 1, new RegExp(`${oidcClientId} is not a service provider`)],
      [['sp', 'delete', oidcClientId], 1, new RegExp(`${oidcClientId} is not a service provider`)],
      [['client', 'show', LIBRARY.entityId], 1, new RegExp(`${LIBRARY.entityId} is not a client`)],
      [['client', 'update', LIBRARY.entityId, '--name', 'Renamed'], 1, new RegExp(`${LIBRARY.entityId} is not a client`)],
      [['sp', 'show', 'https://nobody.example.ac.jp/saml'], 1, /no client https:\/\/nobody\.example\.ac\.jp\/saml/],
    ];
    const before = await akamon.deps.database.db.selectFrom('client').selectAll().orderBy('client_id').execute();
    const results = await inTurns(cases, 4, ([args]) => cli(args));
    results.forEach((r, i) => {
      const [args, code, pattern] = cases[i];
      try {
        expectRefused(r, code, pattern);
        expect(r.stderr).not.toMatch(/^\s+at /m);
      } catch (error) {
        throw new Error(`akamon ${args.join(' ')}: ${(error as Error).message}`);
      }
    });
    // No row was added, changed or removed by any of them (the OIDC client keeps its name, the SP its settings).
    expect(await akamon.deps.database.db.selectFrom('client').selectAll().orderBy('client_id').execute()).toEqual(before);
  });

  test('delete removes the service provider and nothing else', async () => {
    const deleted = await cli(['sp', 'delete', PORTAL.entityId]);
    expect({ code: deleted.code, stdout: lines(deleted.stdout) }).toEqual({ code: 0, stdout: [`Deleted service provider ${PORTAL.entityId}.`] });
    expect(await stored(PORTAL.entityId)).toBeUndefined();
    expect(await json(['sp', 'delete', LIBRARY.entityId])).toEqual({ clientId: LIBRARY.entityId, deleted: true });
    expect(await stored(LIBRARY.entityId)).toBeUndefined();
    expect(await stored(oidcClientId)).toMatchObject({ protocol: 'oidc', saml: null });
    expectRefused(await cli(['sp', 'show', LIBRARY.entityId]), 1, /no client/);
    expect(lines((await cli(['sp', 'list'])).stdout)).toEqual(['no service providers']);
  });

  test("the help of the settings is in the operator's language", async () => {
    const locale = (lang: string) => ({ LANG: lang, LC_ALL: '', LC_MESSAGES: '' });
    const ja = await cli(['sp', 'create', '--help'], locale('ja_JP.UTF-8'));
    expect(ja.code).toBe(0);
    expect(ja.stdout).toMatch(/^ {2}--metadata FILE\|URL\s+SAML メタデータ: ファイルか https の URL/m);
    expect(ja.stdout).toMatch(/^ {2}--attributes NAME,\.\.\.\s+渡す属性/m);
    expect(ja.stdout).toMatch(/^ {2}--require-mfa\s+ここへのサインインには全員に多要素認証を求める$/m);
    const en = await cli(['sp', 'create', '--help'], locale('en_US.UTF-8'));
    expect(en.stdout).toMatch(/^ {2}--metadata FILE\|URL\s+its SAML metadata: a file or an https URL/m);
    expect(en.stdout).not.toMatch(/[ぁ-ん]/);
    // The synopsis offers what an SP has and nothing of an OIDC client.
    expect(en.stdout).toMatch(/^Usage: akamon sp create --name NAME --metadata FILE\|URL /m);
    for (const option of ['--redirect-uri', '--auth-method', '--pairwise']) expect(en.stdout).not.toContain(option);
  });
});

/**
 * The recipes' marked blocks, run as written: the metadata blocks are the files an operator writes,
 * and a URL an operator would give is served on loopback with metadata shaped like that SP's. Each
 * `akamon sp create` must register the entity the recipe names, with the settings it gives, and
 * print the line its comment shows.
 */
describe('the service-provider recipes', () => {
  interface Recipe {
    file: string;
    register: string;
    entityId: string;
    /** The recipe's metadata URL and the SP it stands for, when it registers from a URL. */
    served?: { url: string; acsUrl: string; sloUrl?: string };
    saml: Record<string, unknown>;
    columns?: Record<string, unknown>;
  }
  const recipes: Recipe[] = [
    {
      file: 'slack.md',
      register: 'register',
      entityId: 'https://slack.com',
      saml: {
        nameIdFormat: 'persistent',
        attributes: ['mail', 'givenName', 'sn'],
        attributeNames: ['mail=User.Email', 'givenName=first_name', 'sn=last_name'],
        acs: 'https://example-ac-jp.slack.com/sso/saml',
      },
      columns: { require_mfa: true },
    },
    {
      file: 'google-workspace.md',
      register: 'register',
      entityId: 'https://accounts.google.com/samlrp/metadata?rpid=03abc1de2fgh',
      saml: { nameIdFormat: 'email', attributes: [], acs: 'https://accounts.google.com/samlrp/acs?rpid=03abc1de2fgh' },
      columns: { listed: true },
    },
    {
      file: 'zoom.md',
      register: 'register',
      entityId: 'example-ac-jp.zoom.us',
      served: { url: 'https://example-ac-jp.zoom.us/saml/metadata/sp', acsUrl: 'https://example-ac-jp.zoom.us/saml/SSO', sloUrl: 'https://example-ac-jp.zoom.us/saml/SingleLogout' },
      saml: { nameIdFormat: 'persistent', attributes: ['mail', 'givenName', 'sn', 'displayName'], acs: 'https://example-ac-jp.zoom.us/saml/SSO' },
      columns: { listed: true, homepage_url: 'https://example-ac-jp.zoom.us/' },
    },
    {
      file: 'mellon-and-shibboleth.md',
      register: 'register-mellon',
      entityId: 'https://wiki.example.ac.jp/mellon/metadata',
      served: { url: 'https://wiki.example.ac.jp/mellon/metadata', acsUrl: 'https://wiki.example.ac.jp/mellon/postResponse', sloUrl: 'https://wiki.example.ac.jp/mellon/logout' },
      saml: {
        nameIdFormat: 'persistent',
        attributes: ['eduPersonPrincipalName', 'mail', 'displayName', 'jaDisplayName', 'eduPersonAffiliation'],
        acs: 'https://wiki.example.ac.jp/mellon/postResponse',
      },
    },
    {
      file: 'mellon-and-shibboleth.md',
      register: 'register-shibboleth',
      entityId: 'https://lib.example.ac.jp/shibboleth',
      served: {
        url: 'https://lib.example.ac.jp/Shibboleth.sso/Metadata',
        acsUrl: 'https://lib.example.ac.jp/Shibboleth.sso/SAML2/POST',
        sloUrl: 'https://lib.example.ac.jp/Shibboleth.sso/SLO/Redirect',
      },
      saml: {
        nameIdFormat: 'persistent',
        attributes: ['eduPersonPrincipalName', 'eduPersonScopedAffiliation', 'pairwise-id', 'mail', 'displayName'],
        acs: 'https://lib.example.ac.jp/Shibboleth.sso/SAML2/POST',
      },
    },
  ];

  test.each(recipes)('$file: $register registers $entityId as the recipe says', async (recipe) => {
    // recipeBlocks reads docs/relying-parties/; the service providers' recipes are beside it.
    const blocks = recipeBlocks(`../service-providers/${recipe.file}`);
    const values: Record<string, string> = {};
    if (recipe.served) {
      values[recipe.served.url] = publish(`/${recipe.file}/${recipe.register}`, spMetadata(recipe.entityId, recipe.served.acsUrl, { sloUrl: recipe.served.sloUrl, encrypts: true }));
    } else {
      const file = /--metadata (\S+)/.exec(block(blocks, recipe.register))![1];
      values[file] = await writeFile(`${recipe.register}-${file}`, block(blocks, 'metadata'));
    }
    const written = block(blocks, recipe.register);
    const shell = fill(written, values);
    const r = await cli(cliArguments(shell));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    // The output the recipe shows, where it shows one.
    const shown = /^# (Registered .*)$/m.exec(written)?.[1];
    expect(lines(r.stdout)).toEqual([shown ?? `Registered service provider ${recipe.entityId} (${/--name "([^"]+)"/.exec(shell)![1]}).`]);

    const row = await stored(recipe.entityId);
    expect(row).toMatchObject({ protocol: 'saml', client_secret_enc: null });
    const { acs, ...settings } = recipe.saml;
    expect(row!.saml).toMatchObject({ ...settings, spMetadata: { entityId: recipe.entityId, acs: [expect.objectContaining({ binding: POST, location: acs })] } });
    if (recipe.columns) {
      const columns = await akamon.deps.database.db.selectFrom('client').selectAll().where('client_id', '=', recipe.entityId).executeTakeFirstOrThrow();
      expect(columns).toMatchObject(recipe.columns);
    }
    // The ID as the other commands take it (a Google entity ID holds "?").
    expect((await json(['sp', 'show', recipe.entityId])).clientId).toBe(recipe.entityId);
  });
});
