import type { NextFunction, Request, Response } from 'express';
import { AppError, toAppError } from '../errors';
import { requestLog } from './request-context';

/** Unknown paths: the JSON error shape, not Express's HTML page. */
export function notFoundHandler(req: Request): never {
  throw new AppError('not_found', `No route for ${req.method} ${req.path}`);
}

/**
 * The one place errors become HTTP responses: `{error:{code,message}}` with the code's status, and
 * Retry-After when the error carries one. Body-parser failures are mapped to our codes.
 */
export function errorHandler(caught: unknown, req: Request, res: Response, next: NextFunction): void {
  if (isClientGone(caught, req)) {
    // An upload the client abandoned (or the body timeout cut): nobody is left to answer.
    requestLog(req, 'debug')?.debug(
      { type: (caught as { type?: unknown }).type },
      'request aborted by the client',
    );
    if (!res.headersSent && !res.destroyed) res.destroy();
    return;
  }
  const error = fromBodyParser(caught) ?? fromRouting(caught) ?? toAppError(caught);
  if (error.code === 'internal') req.log?.error({ err: caught }, 'unhandled error');
  if (res.headersSent) {
    // A stream already started: nothing can be said in JSON any more; close it.
    next(caught);
    return;
  }
  if (error.retryAfterMs !== undefined)
    res.setHeader('Retry-After', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
  // A draining instance lets go of the connection too: the client's (or balancer's) next request
  // opens a new one, which lands on an instance that stays.
  if (error.code === 'shutting_down') res.setHeader('Connection', 'close');
  res.status(error.status).json(error.toBody());
}

/** A path that is not valid percent-encoding (`/api/runs/%E0%A4%A/events`) is the client's error. */
function fromRouting(caught: unknown): AppError | undefined {
  if (caught instanceof URIError)
    return new AppError('invalid_request', 'The URL is not valid percent-encoding');
  return undefined;
}

function isClientGone(caught: unknown, req: Request): boolean {
  const type = (caught as { type?: unknown } | null)?.type;
  return type === 'request.aborted' || (type === 'stream.not.readable' && req.destroyed);
}

function fromBodyParser(caught: unknown): AppError | undefined {
  const type = (caught as { type?: unknown } | null)?.type;
  if (type === 'entity.parse.failed') return new AppError('invalid_request', 'The body is not valid JSON');
  if (type === 'entity.too.large') {
    const limit = (caught as { limit?: number }).limit;
    return new AppError('payload_too_large', `The body is larger than ${limit ?? 'the limit of'} bytes`);
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new AppError('invalid_request', 'Unsupported body encoding; send UTF-8 JSON');
  }
  return undefined;
}
