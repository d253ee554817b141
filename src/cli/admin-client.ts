import fs from 'node:fs/promises';
import path from 'node:path';
import { CliError, UsageError } from './args.ts';
import { CLI_REQUEST_TIMEOUT_MS } from '../config/defaults.ts';
import { OPERATOR_TOKEN_FILE } from '../operator/operator.store.ts';

type Env = Record<string, string | undefined>;

export interface Connection {
  url: string;
  token: string;
}

const REQUEST_TIMEOUT_MS = CLI_REQUEST_TIMEOUT_MS;
/** Waits before retrying a request the server refused as overloaded (nothing was done then). */
const OVERLOAD_RETRY_MS = [500, 1000, 2000, 4000];

/** The server's URL: --url, else AKAMON_URL, else localhost on PORT (3000). No trailing slash. */
export function serverUrl(option: string | undefined, env: Env = process.env): string {
  const raw = option ?? (env.AKAMON_URL || `http://localhost:${env.PORT || 3000}`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`the server URL is not a URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`the server URL must be http or https: ${raw}`);
  return url.href.replace(/\/+$/, '');
}

/** Every token Akamon issues is visible ASCII; anything else was pasted wrongly (a second line, a stray character). */
const TOKEN_TEXT = /^[\x21-\x7e]+$/;

/**
 * The operator token: --token, else AKAMON_OPERATOR_TOKEN, else the file the server's first start
 * wrote. A token that a header cannot carry is refused here, before any request, in words that never
 * repeat it (fetch's own refusal would print the whole header).
 */
export async function operatorToken(option: string | undefined, env: Env = process.env): Promise<string> {
  const given = option ?? env.AKAMON_OPERATOR_TOKEN;
  const file = path.resolve(env.AKAMON_DATA_DIR ?? './data', OPERATOR_TOKEN_FILE);
  let token: string;
  if (given) token = given.trim();
  else {
    try {
      token = (await fs.readFile(file, 'utf8')).trim();
    } catch {
      throw new CliError(`no operator token: give --token, set AKAMON_OPERATOR_TOKEN, or start the server once so that it writes ${file}`);
    }
  }
  if (!TOKEN_TEXT.test(token)) {
    const source = option !== undefined ? '--token' : given ? 'AKAMON_OPERATOR_TOKEN' : file;
    throw new CliError(`the operator token from ${source} holds characters other than printable ASCII (such as a line break); copy it again`);
  }
  return token;
}

/** A refusal by the admin API: {"error": code, "error_description": text}. */
export class ApiError extends CliError {
  override name = 'ApiError';
  readonly code: string;
  readonly status: number;

  constructor(code: string, description: string, status: number) {
    super(description);
    this.code = code;
    this.status = status;
  }
}

/** The HTTP client of the running server's admin API (/admin/api). */
export class AdminClient {
  readonly url: string;
  readonly #token: string;

  constructor(connection: Connection) {
    this.url = connection.url;
    this.#token = connection.token;
  }

  get<T>(pathname: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const search = params.size ? `?${params}` : '';
    return this.request<T>('GET', `${pathname}${search}`);
  }

  post<T>(pathname: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', pathname, body);
  }

  patch<T>(pathname: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', pathname, body);
  }

  put<T>(pathname: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', pathname, body);
  }

  delete<T = void>(pathname: string): Promise<T> {
    return this.request<T>('DELETE', pathname);
  }

  async request<T>(method: string, pathname: string, body?: unknown): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once<T>(method, pathname, body);
      } catch (error) {
        const wait = OVERLOAD_RETRY_MS[attempt];
        if (!(error instanceof ApiError && error.code === 'overloaded' && wait !== undefined)) throw error;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  async #once<T>(method: string, pathname: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.url}/admin/api${pathname}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (error) {
      throw unreachable(this.url, error);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const e = (json ?? {}) as { error?: unknown; error_description?: unknown };
      if (typeof e.error === 'string') {
        throw new ApiError(e.error, typeof e.error_description === 'string' ? e.error_description : e.error, response.status);
      }
      throw new ApiError('http_error', `the server answered HTTP ${response.status} to ${method} /admin/api${pathname}; is ${this.url} an Akamon server?`, response.status);
    }
    if (text && json === undefined) throw new CliError(`the server at ${this.url} did not answer with JSON; is it an Akamon server?`);
    return json as T;
  }
}

function unreachable(url: string, error: unknown): CliError {
  const e = error as { name?: string; cause?: { code?: string } };
  if (e.name === 'TimeoutError') return new CliError(`the server at ${url} did not answer within ${REQUEST_TIMEOUT_MS / 1000} seconds`);
  // The code only: a message of fetch's may quote the request's headers, and with them the token.
  const reason = e.cause?.code ?? 'no connection';
  return new CliError(`cannot reach the Akamon server at ${url} (${reason}); start it with \`npm start\` or give --url`);
}

/** Resolves --url/--token (or their defaults) into a client. */
export async function connect(options: { url?: string; token?: string }, env: Env = process.env): Promise<AdminClient> {
  return new AdminClient({ url: serverUrl(options.url, env), token: await operatorToken(options.token, env) });
}
