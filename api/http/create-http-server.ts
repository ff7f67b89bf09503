import http from 'node:http';
import type { RequestListener } from 'node:http';
import type { Logger } from '../logger';
import { clientErrorHandler } from './client-errors';

export interface HttpServerOptions {
  /** REQUEST_BODY_TIMEOUT_MS: headers and body must arrive in full within this. */
  bodyTimeoutMs: number;
  logger: Logger;
}

/**
 * The HTTP server in front of the app, bounded at the edge. In Node 20 `requestTimeout` runs from
 * the request's first byte until its body is complete, and stops there: it cuts a slow upload
 * (slowloris, a body sent a byte at a time) but never a streamed response, so SSE is unaffected.
 * Node checks it every `connectionsCheckingInterval` (30 s by default, which would double a 30 s
 * bound): a tenth of the bound keeps it tight.
 */
export function createHttpServer(app: RequestListener, options: HttpServerOptions): http.Server {
  const server = http.createServer(
    {
      requestTimeout: options.bodyTimeoutMs,
      headersTimeout: Math.min(options.bodyTimeoutMs, 60_000),
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(options.bodyTimeoutMs / 10))),
    },
    app,
  );
  // Longer than common load balancers' idle timeout (60 s), so they close idle connections first.
  server.keepAliveTimeout = 65_000;
  server.on('clientError', clientErrorHandler(options.logger));
  return server;
}
