import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { redactUrl } from '../log-redaction';
import type { Level } from 'pino';
import type { Logger } from '../logger';

declare module 'express-serve-static-core' {
  interface Request {
    id?: string;
    log?: Logger;
  }
}

const REQUEST_LOGGER = Symbol('requestLogger');
const ROOT_LOGGER = Symbol('rootLogger');

type LoggedRequest = Request & { [REQUEST_LOGGER]?: Logger; [ROOT_LOGGER]?: Logger };

/**
 * The request's logger when `level` is enabled, else undefined. Reading `req.log` makes the
 * request's child logger, so a line that is usually off must ask first: the stream-close line at
 * `info` made 10,000 child loggers for nothing when the sse-capacity benchmark released its
 * streams at `warn` (8.5 % of the release's CPU).
 */
export function requestLog(req: Request, level: Level): Logger | undefined {
  const root = (req as LoggedRequest)[ROOT_LOGGER];
  return root && !root.isLevelEnabled(level) ? undefined : req.log;
}

/**
 * Gives every request an id (kept from X-Request-Id when sane), echoes it, and a logger bound to it.
 *
 * `req.log` is made on first use, from a getter on the app's request prototype: a pino child per
 * request (bindings serialised and redacted) was ~2 % of a one-call chat's CPU (cpu benchmark),
 * and most requests log nothing at the level in force. The access-log line's listener is added only
 * when that level is enabled.
 */
export function requestContext(logger: Logger, requestPrototype: object) {
  Object.defineProperty(requestPrototype, ROOT_LOGGER, { configurable: true, value: logger });
  Object.defineProperty(requestPrototype, 'log', {
    configurable: true,
    get(this: LoggedRequest): Logger {
      return (this[REQUEST_LOGGER] ??= logger.child({ reqId: this.id }));
    },
    set(this: LoggedRequest, value: Logger) {
      this[REQUEST_LOGGER] = value;
    },
  });
  const accessLog = logger.isLevelEnabled('info');
  return (req: Request, res: Response, next: NextFunction): void => {
    const incoming = req.get('x-request-id');
    req.id = incoming && /^[\w.-]{1,128}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', req.id);
    if (accessLog) {
      const startedAt = Date.now();
      res.on('finish', () => {
        req.log?.info(
          {
            method: req.method,
            url: redactUrl(req.originalUrl),
            status: res.statusCode,
            ms: Date.now() - startedAt,
          },
          'request',
        );
      });
    }
    next();
  };
}
