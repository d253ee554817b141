import { describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import swc from '@swc/core';

/**
 * Which way dependencies may point (DESIGN.md sections 3 and 8): shared helpers <- db <- domain <-
 * provider and web front ends <- composition root. Domain modules never reach the web, the provider or
 * the page text; the database layer knows no domain; migrations are frozen and never import src/.
 *
 * Each layer lists the layers it may import; anything else is a forbidden direction. A file belongs to
 * the layer of the longest path below that matches it, and every file under src/ and migrations/ must
 * belong to one, so a new folder is placed in the table on purpose. Type-only imports count: a type
 * from a layer is a dependency on that layer's meaning.
 *
 * Packages that carry a layer's role count as that layer (the web framework, the provider engine, the
 * template engine); other packages (kysely, pino, jose, ...) are free to every layer.
 */
interface Layer {
  name: string;
  files: string[];
  mayImport: string[];
}

const LAYERS: Layer[] = [
  // Helpers with no knowledge of the app: errors, clock, ids, the request memo, the logger, secrets and tokens.
  { name: 'shared', files: ['src/shared/', 'src/crypto/'], mayImport: ['shared'] },
  // Environment -> typed config, and the documented security defaults.
  { name: 'config', files: ['src/config/'], mayImport: ['shared', 'config'] },
  // The message catalogues: keys and their texts. Naming a message key is allowed to the domain.
  { name: 'messages', files: ['src/i18n/en.ts', 'src/i18n/ja.ts'], mayImport: ['messages'] },
  // Turning keys into text for a locale: presentation, so never in the domain.
  { name: 'translator', files: ['src/i18n/i18n.ts'], mayImport: ['messages', 'shared'] },
  // The kysely instance, schema types, the migrator, row-level helpers shared by stores.
  { name: 'db', files: ['src/db/'], mayImport: ['shared', 'config', 'db'] },
  // Rules and stores: account, password, MFA, clients, education, audit, access rules, throttling,
  // mail delivery, identity verification's store, service and upstream client, and the dashboard's figures.
  {
    name: 'domain',
    files: [
      'src/account/',
      'src/password/',
      'src/mfa/',
      'src/client/',
      'src/education/',
      'src/audit/',
      'src/access/',
      'src/throttle/',
      'src/mail/',
      'src/idv/',
      'src/saml/',
      'src/operator/',
      'src/dashboard/',
      // What the domain may count (the Meter interface); the Prometheus side is the metrics layer.
      'src/metrics/meter.ts',
      'src/notice/',
    ],
    mayImport: ['shared', 'config', 'messages', 'db', 'domain'],
  },
  // The OIDC provider's configuration, adapter, account lookup, keys and its own pages.
  { name: 'provider', files: ['src/oidc/'], mayImport: ['shared', 'config', 'messages', 'translator', 'db', 'domain', 'provider', 'http', 'koa', 'oidc-provider'] },
  // The web toolkit every front end uses: middleware, the error map, CSRF, forms, rendering, static files.
  { name: 'http', files: ['src/http/'], mayImport: ['shared', 'config', 'messages', 'translator', 'db', 'domain', 'http', 'koa', 'views'] },
  // The sign-in steps: the one web front end built on the provider's interaction policy.
  { name: 'interaction', files: ['src/interaction/'], mayImport: ['shared', 'config', 'messages', 'translator', 'db', 'domain', 'http', 'interaction', 'web', 'koa', 'oidc-provider'] },
  // The typed flow store of multi-step flows outside the provider's interactions (recovery, identity
  // verification): a cookie, server-side state and one request at a time, for the web front ends.
  { name: 'flow', files: ['src/flow/'], mayImport: ['shared', 'config', 'messages', 'translator', 'db', 'domain', 'http', 'interaction', 'flow', 'koa'] },
  // The metrics: prom-client's registry (the domain's Meter), request timing, the provider's grant
  // events, the /metrics route and its separate listener.
  { name: 'metrics', files: ['src/metrics/'], mayImport: ['shared', 'config', 'db', 'domain', 'http', 'metrics', 'koa', 'oidc-provider'] },
  // The other web front ends: self-service pages, recovery, the admin API, identity verification's routes.
  {
    name: 'web',
    files: ['src/selfservice/', 'src/recovery/', 'src/admin/', 'src/console/', 'src/scim/', 'src/idv/idv-flow.ts'],
    mayImport: ['shared', 'config', 'messages', 'translator', 'db', 'domain', 'http', 'interaction', 'flow', 'web', 'koa', 'letter'],
  },
  // Development only: a stand-in for the national ID card's identity provider, an OP of its own
  // (not Akamon's provider) that main.ts starts beside the app when asked to.
  // The SAML endpoints: a web front end that drives the provider's authorization for SAML service providers.
  {
    name: 'saml-front',
    files: ['src/saml/sso.ts', 'src/saml/slo.ts', 'src/saml/post-binding.ts'],
    mayImport: ['shared', 'config', 'messages', 'translator', 'db', 'domain', 'http', 'interaction', 'saml-front', 'koa', 'oidc-provider'],
  },
  { name: 'dev-upstream', files: ['src/idv/dev-provider.ts'], mayImport: ['shared', 'config', 'messages', 'translator', 'http', 'koa', 'oidc-provider', 'views'] },
  // The printable ja/en letter of a new account or password: text and a template, for the CLI's files and the console's downloads.
  { name: 'letter', files: ['src/letter/'], mayImport: ['shared', 'messages', 'translator', 'views'] },
  // The ja+en text of the notices by mail: the domain decides what is sent, this turns it into words.
  { name: 'notice-mail', files: ['src/notice/notice-mail.ts'], mayImport: ['shared', 'config', 'messages', 'translator', 'domain'] },
  // The operators' command line: a client of the admin API that opens the database only to migrate.
  { name: 'cli', files: ['src/cli/'], mayImport: ['shared', 'config', 'messages', 'translator', 'db', 'domain', 'composition', 'cli', 'views', 'letter'] },
  // Builds the stores and services from the config (tests pass fakes here).
  { name: 'composition', files: ['src/deps.ts'], mayImport: ['shared', 'config', 'db', 'domain', 'provider', 'interaction', 'web', 'notice-mail', 'metrics'] },
  // Process entry and the Koa app: everything comes together here.
  { name: 'app', files: ['src/app.ts', 'src/main.ts'], mayImport: ['*'] },
  // Frozen once landed: a migration that imported src/ would change when the app does.
  { name: 'migrations', files: ['migrations/'], mayImport: [] },
];

/** Packages that stand for a layer's role. */
const PACKAGE_LAYERS: Record<string, string> = {
  koa: 'koa',
  '@koa/router': 'koa',
  'koa-compose': 'koa',
  'oidc-provider': 'oidc-provider',
  eta: 'views',
};

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SOURCE_EXTENSIONS = /\.(ts|js|mjs|cjs)$/;

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && SOURCE_EXTENSIONS.test(entry.name))
    .map((entry) => path.relative(ROOT, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

function layerOfFile(file: string): Layer | undefined {
  let best: { layer: Layer; length: number } | undefined;
  for (const layer of LAYERS) {
    for (const prefix of layer.files) {
      const matches = prefix.endsWith('/') ? file.startsWith(prefix) : file === prefix;
      if (matches && (!best || prefix.length > best.length)) best = { layer, length: prefix.length };
    }
  }
  return best?.layer;
}

/** The few fields of swc's syntax tree that name a module. */
interface AstNode {
  type?: string;
  value?: string;
  source?: { value: string };
  argument?: AstNode;
  callee?: AstNode;
  arguments?: Array<{ expression: AstNode & { expressions?: unknown[]; quasis?: Array<{ cooked?: string }> } }>;
}

/** Every module specifier a file names: static imports and re-exports (type-only too) and import(). */
function importsOf(source: string, file: string): string[] {
  const program = swc.parseSync(source, { syntax: file.endsWith('.ts') ? 'typescript' : 'ecmascript', target: 'es2024' });
  const found: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const n = node as AstNode;
    if ((n.type === 'ImportDeclaration' || n.type === 'ExportAllDeclaration' || n.type === 'ExportNamedDeclaration') && n.source) {
      found.push(n.source.value);
    }
    if (n.type === 'TsImportType' && n.argument?.type === 'StringLiteral') found.push(n.argument.value ?? '');
    if (n.type === 'CallExpression' && (n.callee?.type === 'Import' || (n.callee?.type === 'Identifier' && n.callee.value === 'require'))) {
      const arg = n.arguments?.[0]?.expression;
      if (arg?.type === 'StringLiteral') found.push(arg.value ?? '');
      else if (arg?.type === 'TemplateLiteral' && arg.expressions?.length === 0) found.push(arg.quasis?.[0]?.cooked ?? '');
      else found.push('<computed>');
    }
    for (const value of Object.values(n)) if (value && typeof value === 'object') visit(value);
  };
  visit(program.body);
  return found;
}

/** The layer an import lands in: a file's layer, a package's role, or undefined for a free package. */
function targetOf(file: string, specifier: string): { layer: string | undefined; label: string } {
  if (specifier === '<computed>') return { layer: '<computed>', label: 'an import() whose path is computed' };
  if (specifier.startsWith('.') || specifier.startsWith('/')) {
    const target = path
      .relative(ROOT, path.resolve(path.join(ROOT, path.dirname(file)), specifier))
      .split(path.sep)
      .join('/');
    if (target.startsWith('views/')) return { layer: 'views', label: target };
    return { layer: layerOfFile(target)?.name ?? (target.startsWith('src/') ? '<unplaced>' : '<outside src>'), label: target };
  }
  if (specifier.startsWith('node:')) return { layer: undefined, label: specifier };
  const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
  return { layer: PACKAGE_LAYERS[name], label: specifier };
}

/** Each import of `file` that points against its layer's direction, as one readable line. */
function violationsIn(file: string, source: string): string[] {
  const layer = layerOfFile(file);
  if (!layer) return [];
  const violations: string[] = [];
  for (const specifier of importsOf(source, file)) {
    const target = targetOf(file, specifier);
    if (target.layer === undefined) continue;
    if (layer.mayImport.includes('*') && !target.layer.startsWith('<')) continue;
    if (!layer.mayImport.includes(target.layer)) {
      const may = layer.mayImport.length ? `may import only ${layer.mayImport.join(', ')}` : 'may import no layer of the app';
      violations.push(`${file} imports ${target.label} (${target.layer}): a ${layer.name} file ${may}`);
    }
  }
  return violations;
}

const FILES = [...filesUnder('src'), ...filesUnder('migrations')];

describe('dependency rules', () => {
  test('the parser sees every kind of import', () => {
    const source = [
      "import a from './a.ts';",
      "import type { B } from '../b.ts';",
      'import {',
      '  c,',
      "} from 'c-package';",
      "export { d } from './d.ts';",
      "export * from './e.ts';",
      "import './f.ts';",
      "const g = await import('./g.ts');",
      "type H = import('./h.ts').H;",
      "// import x from './not-a-comment.ts';",
      'const s = "import y from \'./not-a-string.ts\'";',
    ].join('\n');
    expect(importsOf(source, 'x.ts')).toEqual(['./a.ts', '../b.ts', 'c-package', './d.ts', './e.ts', './f.ts', './g.ts', './h.ts']);
  });

  test('every file under src/ and migrations/ belongs to a layer', () => {
    expect(FILES.length).toBeGreaterThan(100);
    expect(FILES.filter((file) => !layerOfFile(file))).toEqual([]);
  });

  test('the table names only layers it defines', () => {
    const known = new Set([...LAYERS.map((l) => l.name), ...Object.values(PACKAGE_LAYERS), '*']);
    expect(LAYERS.flatMap((l) => l.mayImport.filter((name) => !known.has(name)).map((name) => `${l.name} -> ${name}`))).toEqual([]);
  });

  test('a forbidden direction is reported with the file and the import', () => {
    const domain = [
      "import { writingProviderRows } from '../oidc/adapter.ts';",
      "import type { Context } from 'koa';",
      "import type { Translate } from '../i18n/i18n.ts';",
      "import type { MessageKey } from '../i18n/en.ts';",
    ];
    expect(violationsIn('src/client/client.store.ts', domain.join('\n'))).toEqual([
      'src/client/client.store.ts imports src/oidc/adapter.ts (provider): a domain file may import only shared, config, messages, db, domain',
      'src/client/client.store.ts imports koa (koa): a domain file may import only shared, config, messages, db, domain',
      'src/client/client.store.ts imports src/i18n/i18n.ts (translator): a domain file may import only shared, config, messages, db, domain',
    ]);
    expect(violationsIn('src/db/database.ts', "import type { AccountRow } from '../account/account.store.ts';")).toHaveLength(1);
    expect(violationsIn('src/shared/clock.ts', "import { loadConfig } from '../config/config.ts';")).toHaveLength(1);
    expect(violationsIn('src/cli/letter.ts', "import { Renderer } from '../http/renderer.ts';")).toHaveLength(1);
    expect(violationsIn('migrations/0009_add_x.ts', "import { sql } from 'kysely';\nimport type { DB } from '../src/db/schema.ts';")).toEqual([
      'migrations/0009_add_x.ts imports src/db/schema.ts (db): a migrations file may import no layer of the app',
    ]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a computed import() is the input here
    expect(violationsIn('src/account/x.ts', 'const m = await import(`../${name}.ts`);')).toHaveLength(1);
    expect(violationsIn('src/app.ts', "import { x } from './oidc/adapter.ts';\nimport Provider from 'oidc-provider';")).toEqual([]);
  });

  test('no file under src/ or migrations/ imports against the direction of its layer', () => {
    expect(FILES.flatMap((file) => violationsIn(file, fs.readFileSync(path.join(ROOT, file), 'utf8')))).toEqual([]);
  });
});
