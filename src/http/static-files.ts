import fs from 'node:fs';
import path from 'node:path';
import type { Context, Next } from 'koa';
import { viewsDir } from '../shared/views-dir.ts';

const TYPES: Record<string, string> = { '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png' };

/** Serves the few files in views/static (read once at start; no path from the request touches the disk). */
export function staticFiles() {
  const dir = path.join(viewsDir, 'static');
  const files = new Map<string, Buffer>(
    fs
      .readdirSync(dir)
      .filter((name) => TYPES[path.extname(name)])
      .map((name) => [name, fs.readFileSync(path.join(dir, name))]),
  );
  return async (ctx: Context, next: Next) => {
    if (!ctx.path.startsWith('/static/') || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    const name = ctx.path.slice('/static/'.length);
    const file = files.get(name);
    if (!file) return next();
    ctx.type = TYPES[path.extname(name)];
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = file;
  };
}
