import http from 'node:http';
import type { RequestListener } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../logger';
import { clientErrorHandler } from './client-errors';

export interface HttpServerOptions {
  /** REQUEST_BODY_TIMEOUT_MS: headers and body must arrive in full within this. */
  bodyTimeoutMs: number;
  logger: Logger;
  /** The prototype the app gives its requests (Express: `app.request`); see requestClass. */
  requestPrototype?: object;
}

/**
 * Requests built with the app's request prototype from the start. Express otherwise swaps every
 * request's prototype (Object.setPrototypeOf) as it enters the app, and V8 then gives each request
 * a hidden class of its own: ~0.8 KB more heap per open request (8 MB at 10,000 waiting streams,
 * sse-capacity benchmark) and property lookups that never hit an inline cache. Express's swap is
 * then a no-op. (Responses are left alone: built this way they fall into dictionary mode, larger.)
 */
function requestClass(prototype: object): typeof http.IncomingMessage {
  const base = http.IncomingMessage as unknown as (this: http.IncomingMessage, socket: Socket) => void;
  const lateKeys = routerRequestKeys();
  function AppRequest(this: http.IncomingMessage, socket: Socket): void {
    base.call(this, socket);
    for (const key of lateKeys) (this as unknown as Record<symbol, unknown>)[key] = undefined;
  }
  AppRequest.prototype = prototype;
  return AppRequest as unknown as typeof http.IncomingMessage;
}

/**
 * Keys Express's router adds to every request by computed (keyed) assignment. V8 turns an object
 * with this many properties into a dictionary when a new one arrives that way: `req[matchedRoute]`
 * (router 2.3) made every request a hash table, 1.5 KB of property storage per request instead of
 * ~0.3 KB (heap snapshot of 3,000 waiting streams, docs/BENCHMARKS.md). Present from construction,
 * the key is only updated later and the request keeps its fast shape. The symbol is the router's
 * own (its lib/symbols module); a router without it simply gets nothing pre-set.
 */
function routerRequestKeys(): symbol[] {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const symbols = require('router/lib/symbols') as Record<string, unknown>;
    return typeof symbols.matchedRoute === 'symbol' ? [symbols.matchedRoute] : [];
  } catch {
    return [];
  }
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
      ...(options.requestPrototype ? { IncomingMessage: requestClass(options.requestPrototype) } : {}),
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
