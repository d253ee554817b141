import http from 'node:http';
import Router from '@koa/router';
import type { Context } from 'koa';
import { bearerOperator, unauthorized } from '../http/operator-bearer.ts';
import type { OperatorStore } from '../operator/operator.store.ts';
import { may } from '../operator/permissions.ts';
import type { Metrics } from './prometheus.ts';

export const METRICS_PATH = '/metrics';

/**
 * `/metrics` on the main port: never public. An API token whose role has `metrics.read` (admin,
 * monitoring) reads it; no valid token answers 401 as the admin API does, another role 403.
 */
export function metricsRoute(deps: { metrics: Metrics; operators: OperatorStore }): Router {
  const router = new Router();
  router.get(METRICS_PATH, async (ctx: Context) => {
    ctx.set('Cache-Control', 'no-store');
    const principal = await bearerOperator(ctx, deps.operators);
    if (!principal) return unauthorized(ctx, 'akamon-metrics');
    if (!may(principal, 'metrics.read')) {
      ctx.status = 403;
      ctx.body = { error: 'forbidden', error_description: `the ${principal.role} role may not read the metrics (metrics.read)` };
      return;
    }
    const { contentType, body } = await deps.metrics.text();
    ctx.type = contentType;
    ctx.body = body;
  });
  return router;
}

/**
 * The separate listener (AKAMON_METRICS_PORT on AKAMON_METRICS_HOST): only `/metrics`, without a
 * token, for a Prometheus that reaches the node on a private network. Nothing else is served there.
 */
export async function startMetricsServer(metrics: Metrics, port: number, host: string): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== METRICS_PATH || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.text().then(
      ({ contentType, body }) => response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(request.method === 'HEAD' ? undefined : body),
      () => response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
