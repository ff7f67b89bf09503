import type { Socket } from 'node:net';
import { AppError, type ErrorCode } from '../errors';
import type { Logger } from '../logger';

/**
 * Failures Node's HTTP parser reports before Express sees a request (the server's `clientError`
 * event): a body that did not arrive within REQUEST_BODY_TIMEOUT_MS, headers past the size limit,
 * bytes that are not HTTP. Each gets the JSON error shape when the socket can still be written,
 * and is logged at debug: they are the client's doing, and a flood of them (slowloris) must not
 * flood the log with stack traces.
 */
export function clientErrorHandler(logger: Logger) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    const code = codeFor(error.code);
    logger.debug({ code: error.code, answered: code ?? null }, 'client connection error');
    const response = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (!code || !socket.writable || socket.bytesWritten > 0 || response?.headersSent) {
      // A reset, or a response already under way: nothing sensible can be written any more.
      socket.destroy();
      return;
    }
    const appError = new AppError(code);
    const body = JSON.stringify(appError.toBody());
    socket.end(
      `HTTP/1.1 ${appError.status} ${REASONS[appError.status]}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
    // A client that does not read even this answer must not keep the descriptor.
    setTimeout(() => socket.destroy(), 1000).unref();
  };
}

function codeFor(nodeCode: string | undefined): ErrorCode | undefined {
  if (nodeCode === 'ERR_HTTP_REQUEST_TIMEOUT') return 'request_timeout';
  if (nodeCode === 'HPE_HEADER_OVERFLOW') return 'headers_too_large';
  if (nodeCode === 'ECONNRESET' || nodeCode === 'EPIPE' || nodeCode === 'HPE_INVALID_EOF_STATE')
    return undefined;
  if (nodeCode?.startsWith('HPE_')) return 'invalid_request';
  return undefined;
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};
