import cors from 'cors';
import type { RequestHandler } from 'express';

/** The API paths a chat client on another origin needs; monitoring and admin stay same-origin. */
export const CORS_PATHS = ['/api/chat', '/api/runs', '/api/conversations', '/v1'];

/**
 * CORS for chat clients served from another origin (CORS_ORIGINS). Unset = no CORS headers, so
 * browsers keep the same-origin rule. Preflights are answered here, before any router, because
 * a browser sends them without the Authorization header that the routes would check.
 */
export function corsMiddleware(origins: readonly string[]): RequestHandler | undefined {
  if (origins.length === 0) return undefined;
  return cors({
    // '*' answers any origin; otherwise only the listed ones get Access-Control-Allow-Origin.
    origin: origins.includes('*') ? '*' : [...origins],
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: [
      'Content-Type',
      'Authorization',
      'Accept',
      'X-User-Id',
      'X-Queue-Token',
      'Last-Event-ID',
      // The gateway's priority header (api/gateway/caller.ts).
      'X-Troupe-Priority',
    ],
    exposedHeaders: ['Retry-After', 'retry-after-ms', 'X-Request-Id'],
    maxAge: 600,
  });
}
