import querystring from 'node:querystring';
import type { RouteTable } from './route-table.ts';
import type { Context, Middleware, Next } from 'koa';
import type { MessageKey } from '../i18n/en.ts';
import { textFault, type TextFault, type TextRules } from '../shared/text.ts';
import { REQUEST_BODY_MAX_BYTES } from '../config/defaults.ts';
import type { Renderer } from './renderer.ts';
import { SCIM_CONTENT_TYPE, scimErrorBody } from './scim-answer.ts';

declare module 'koa' {
  interface Request {
    /** The form or JSON body, parsed once by the input guard (a null-prototype object for forms). */
    body?: unknown;
    /** The text of that body as it was received. */
    rawBody?: string;
  }
}

/**
 * How a refusal is said: a ja/en page on Akamon's own routes, JSON {error, error_description} on
 * the admin API, a SCIM error (RFC 7644 3.12) on /scim, RFC 6749 JSON (`invalid_request`) on
 * everything oidc-provider serves.
 */
export type Surface = 'page' | 'admin' | 'scim' | 'protocol';

/** The largest body any route takes (the admin API's 64 KB; forms limit themselves further). */
const BODY_LIMIT = REQUEST_BODY_MAX_BYTES;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** How deep a JSON body may nest: far beyond any request Akamon takes, and every later walk of it stays shallow. */
const JSON_MAX_DEPTH = 32;

const ANY_FIELD: TextRules = { bidi: true };
/** Fields whose values may hold more than the default (see shared/text.ts for the rules themselves). */
const FIELD_RULES: ReadonlyMap<string, TextRules> = new Map([
  // JSON-valued: pretty-printed JSON has tabs and line breaks between its tokens.
  ['claims', { lineBreaks: true, bidi: true }],
  // A system's description (admin API) has several lines; so has a SAML metadata document.
  ['description', { lineBreaks: true, bidi: true }],
  ['spMetadata', { lineBreaks: true, bidi: true }],
  // Passwords (sign-in, change, reset, the password grant): when one is chosen, the password policy
  // names the control-character rule on the page; at sign-in such a password is only a wrong one.
  ...['password', 'current', 'new', 'confirm'].map((name): [string, TextRules] => [name, { controls: true, bidi: true }]),
]);

// The cheap test every request pays: a percent-escape of a control or non-ASCII byte, or a raw
// character outside printable ASCII. Only text that has one is decoded and judged field by field.
const SUSPECT = /%(?:[01][0-9a-f]|7f|[89a-f][0-9a-f])|[^\x20-\x7e]/i;
// A "%" that starts no escape is a literal "%" (as querystring reads it), not invalid UTF-8.
const STRAY_PERCENT = /%(?![0-9a-f]{2})/gi;

interface Refusal {
  status: 400 | 413 | 415;
  /** For the log and the JSON answer: which part of the request, and what is wrong with it. */
  where: string;
  problem: TextFault | 'too_large' | 'unsupported_body' | 'invalid_json' | 'too_deep' | 'duplicate_key' | 'unreadable_body';
}

/** What the JSON answer says after `where`, and what a page says. */
const PROBLEMS: Record<Refusal['problem'], { says: string; page: MessageKey }> = {
  ill_formed: { says: 'is not valid UTF-8 text', page: 'error.invalid_text' },
  control_character: { says: 'contains a control character', page: 'error.invalid_text' },
  bidi_control: { says: 'contains a bidirectional formatting character', page: 'error.invalid_text' },
  too_large: { says: `is larger than ${BODY_LIMIT / 1024} KB`, page: 'error.too_large' },
  unsupported_body: { says: 'must be UTF-8 and not compressed', page: 'error.bad_request' },
  invalid_json: { says: 'is not valid JSON', page: 'error.bad_request' },
  too_deep: { says: `nests objects and lists deeper than ${JSON_MAX_DEPTH} levels`, page: 'error.bad_request' },
  duplicate_key: { says: 'is given more than once in one object', page: 'error.bad_request' },
  unreadable_body: { says: 'could not be read', page: 'error.bad_request' },
};

/** Percent-decoding as URL-encoded forms and query strings use it; undefined when the bytes are not UTF-8. */
function decodeComponent(text: string, plusIsSpace: boolean): string | undefined {
  try {
    return decodeURIComponent((plusIsSpace ? text.replaceAll('+', ' ') : text).replace(STRAY_PERCENT, '%25'));
  } catch {
    return undefined;
  }
}

/** Names a field in a message only when it looks like one: the caller chose it. */
const fieldName = (name: string | undefined, kind: string) => (name && /^[\w.[\]-]{1,64}$/.test(name) ? `the ${name} ${kind}` : `a ${kind}`);

function valueRefusal(field: string | undefined, value: string | undefined, kind: string): Refusal | undefined {
  const problem = value === undefined ? 'ill_formed' : textFault(value, (field !== undefined && FIELD_RULES.get(field)) || ANY_FIELD);
  return problem ? { status: 400, where: fieldName(field, kind), problem } : undefined;
}

/** A query string or a URL-encoded form body, judged pair by pair once the cheap test finds something. */
function urlencodedRefusal(text: string, kind: string): Refusal | undefined {
  if (!SUSPECT.test(text)) return undefined;
  for (const pair of text.split('&')) {
    if (!SUSPECT.test(pair)) continue;
    const eq = pair.indexOf('=');
    const name = decodeComponent(eq < 0 ? pair : pair.slice(0, eq), true);
    const refusal = valueRefusal(undefined, name, `${kind} name`) ?? (eq < 0 ? undefined : valueRefusal(name, decodeComponent(pair.slice(eq + 1), true), kind));
    if (refusal) return refusal;
  }
  return undefined;
}

function pathRefusal(path: string): Refusal | undefined {
  if (!SUSPECT.test(path)) return undefined;
  const decoded = decodeComponent(path, false);
  const problem = decoded === undefined ? 'ill_formed' : textFault(decoded, ANY_FIELD);
  return problem ? { status: 400, where: 'the request path', problem } : undefined;
}

/** Every key and string of a JSON body; iterative, so a deeply nested body cannot overflow the stack. */
function jsonRefusal(root: unknown): Refusal | undefined {
  const pending: Array<[string | undefined, unknown]> = [[undefined, root]];
  while (pending.length > 0) {
    const [field, value] = pending.pop()!;
    if (typeof value === 'string') {
      const refusal = valueRefusal(field, value, 'field');
      if (refusal) return refusal;
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push([field, item]);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        const refusal = valueRefusal(undefined, key, 'field name');
        if (refusal) return refusal;
        pending.push([key, item]);
      }
    }
  }
  return undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;

/**
 * The shape of a JSON text that JSON.parse accepted: nested deeper than JSON_MAX_DEPTH, or an object
 * that names a key twice (JSON.parse keeps the last silently, so `"role":"admin","role":"helpdesk"`
 * would mean what the last reader of the text decides; a form takes each field once, so does JSON).
 * One pass over the text without recursion: a stack of the open containers, each object with the
 * keys it has named (compared decoded, so "\u0061" and "a" are one key).
 */
function structureRefusal(text: string): Refusal | undefined {
  // A Set of names for each open object, null for each open list.
  const open: Array<Set<string> | null> = [];
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = i + 1;
      while (text.charCodeAt(end) !== QUOTE) end += text.charCodeAt(end) === BACKSLASH ? 2 : 1;
      const names = open.at(-1);
      if (keyNext && names) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (names.has(key)) return { status: 400, where: fieldName(key, 'field'), problem: 'duplicate_key' };
        names.add(key);
      }
      keyNext = false;
      i = end;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (open.length === JSON_MAX_DEPTH) return { status: 400, where: 'the request body', problem: 'too_deep' };
      open.push(c === OPEN_OBJECT ? new Set() : null);
      keyNext = c === OPEN_OBJECT;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      open.pop();
      keyNext = false;
    } else if (c === COMMA) {
      keyNext = open.at(-1) instanceof Set;
    }
  }
  return undefined;
}

class RefusedInput extends Error {
  readonly refusal: Refusal;

  constructor(refusal: Refusal) {
    super(refusal.problem);
    this.refusal = refusal;
  }
}

/** The body's text, at most BODY_LIMIT bytes of UTF-8. */
async function readText(ctx: Context): Promise<string> {
  const refuse = (status: Refusal['status'], problem: Refusal['problem']): never => {
    throw new RefusedInput({ status, where: 'the request body', problem });
  };
  const charset = ctx.request.charset.toLowerCase();
  const encoding = ctx.get('content-encoding').toLowerCase();
  if ((charset && charset !== 'utf-8' && charset !== 'utf8') || (encoding && encoding !== 'identity')) refuse(415, 'unsupported_body');
  if ((ctx.request.length ?? 0) > BODY_LIMIT) refuse(413, 'too_large');
  const chunks: Buffer[] = [];
  let received = 0;
  try {
    // Not destroyed on an early return: that would close the socket before the 413 is sent.
    for await (const chunk of ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > BODY_LIMIT) refuse(413, 'too_large');
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof RefusedInput) throw error;
    refuse(400, 'unreadable_body'); // the client went away mid-body
  }
  try {
    return UTF8.decode(Buffer.concat(chunks, received));
  } catch {
    return refuse(400, 'ill_formed');
  }
}

/**
 * Reads a form or JSON body once and judges it with the path and query. The parsed body goes to
 * ctx.request.body, where Akamon's routes read it and where oidc-provider takes it when the stream
 * is already read (lib/shared/selective_body.js; it says so once per process with an
 * "already parsed request body detected" warning, which is expected here).
 */
async function inspect(ctx: Context): Promise<Refusal | undefined> {
  const early = pathRefusal(ctx.path) ?? urlencodedRefusal(ctx.querystring, 'parameter');
  if (early || !BODY_METHODS.has(ctx.method)) return early;
  // Koa's is() lower-cases and trims the type, as the provider and formBody do: a reader that
  // judged the type differently from them would let a body past unread ("Application/JSON ;").
  const kind = ctx.request.is('application/x-www-form-urlencoded', 'json', '+json');
  if (!kind) return undefined;
  const json = kind !== 'application/x-www-form-urlencoded';
  const text = await readText(ctx);
  ctx.request.rawBody = text;
  if (!json) {
    ctx.request.body = querystring.parse(text);
    return urlencodedRefusal(text, 'parameter');
  }
  try {
    ctx.request.body = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    return { status: 400, where: 'the request body', problem: 'invalid_json' };
  }
  return structureRefusal(text) ?? jsonRefusal(ctx.request.body);
}

/**
 * The edge of every request, before any route or the provider: NUL and the other control
 * characters (except where a field holds lines or a password), lone surrogates and invalid UTF-8
 * in the path, the query string or a form/JSON body are answered 400 before anything is looked up,
 * stored, sent or mailed. Requests without any are one regular-expression test each.
 */
export function inputGuard(renderer: Renderer, surfaceOf: (ctx: Context) => Surface): Middleware {
  return async (ctx: Context, next: Next) => {
    let refusal: Refusal | undefined;
    try {
      refusal = await inspect(ctx);
    } catch (error) {
      if (!(error instanceof RefusedInput)) throw error;
      refusal = error.refusal;
    }
    if (!refusal) return next();
    const surface = surfaceOf(ctx);
    // Which part and why, never the value: it may be a code, a token or a password.
    ctx.state.log.info({ where: refusal.where, problem: refusal.problem, surface }, 'input refused');
    const problem = PROBLEMS[refusal.problem];
    if (surface === 'page') return renderer.error(ctx, problem.page, refusal.status, formPage(ctx));
    if (surface === 'scim') return scimRefusal(ctx, refusal, `${refusal.where} ${problem.says}`);
    ctx.status = refusal.status;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { error: 'invalid_request', error_description: `${refusal.where} ${problem.says}` };
  };
}

/**
 * The page the refused form was on, for the error page's way back: the Referer when it is this
 * site's own and names a local path (never another host, nor "//host" or "/\\host"), else none.
 */
function formPage(ctx: Context): string | undefined {
  let referer: URL;
  try {
    referer = new URL(ctx.get('referer'));
  } catch {
    return undefined;
  }
  const path = `${referer.pathname}${referer.search}`;
  return referer.host === ctx.host && /^\/(?![/\\])/.test(path) ? path : undefined;
}

/** Refusals of a JSON text's form rather than of a value in it. */
const SYNTAX_PROBLEMS: ReadonlySet<Refusal['problem']> = new Set(['invalid_json', 'too_deep', 'duplicate_key']);

/** RFC 7644 3.12: unreadable or ill-shaped JSON is invalidSyntax, a bad character in a value invalidValue; too large or unsupported bodies have no scimType. */
function scimRefusal(ctx: Context, refusal: Refusal, detail: string): void {
  const scimType = SYNTAX_PROBLEMS.has(refusal.problem) ? 'invalidSyntax' : refusal.status === 400 ? 'invalidValue' : undefined;
  ctx.status = refusal.status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = scimErrorBody(refusal.status, scimType, detail);
  ctx.type = SCIM_CONTENT_TYPE;
}

/**
 * A POST, PUT or PATCH that carries a body other than JSON. A JSON API refuses it (415) rather than
 * act as though nothing had been sent: a revocation "on" a date sent as text/plain must not revoke now.
 */
export function sendsOtherThanJson(ctx: Context): boolean {
  if (!BODY_METHODS.has(ctx.method)) return false;
  const carriesBody = ctx.get('transfer-encoding') !== '' || Number(ctx.get('content-length')) > 0;
  return carriesBody && !ctx.request.is('json', '+json');
}

const ADMIN_API = '/admin/api';
const SCIM = '/scim';

/**
 * The surface of a request by who would answer it: the admin API, another of Akamon's routers
 * (pages), or else the provider, which the app mounts after them.
 */
export function surfaceByRoute(routes: RouteTable): (ctx: Context) => Surface {
  return (ctx) => {
    if (ctx.path === ADMIN_API || ctx.path.startsWith(`${ADMIN_API}/`)) return 'admin';
    if (ctx.path === SCIM || ctx.path.startsWith(`${SCIM}/`)) return 'scim';
    return routes.serves(ctx) ? 'page' : 'protocol';
  };
}
