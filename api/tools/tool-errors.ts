/**
 * The coded failures of the tool system. They never escape `ToolExecutor.run`: each becomes a
 * ToolOutcome with `ok: false`, `errorCode` and a content the model can read and act on.
 */

export const TOOL_ERROR_CODES = [
  'unknown_tool',
  'invalid_arguments',
  'tool_rate_limited',
  'tool_timeout',
  'tool_unavailable',
  'tool_failed',
  'cancelled',
] as const;

export type ToolErrorCode = (typeof TOOL_ERROR_CODES)[number];

export class ToolError extends Error {
  readonly code: ToolErrorCode;
  readonly retryAfterMs?: number;

  constructor(
    code: ToolErrorCode,
    message: string,
    options: { retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ToolError';
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isToolError(value: unknown): value is ToolError {
  return value instanceof ToolError;
}

/** The tool message the model receives for a failure: a small JSON object, code plus advice. */
export function toolErrorContent(error: ToolError): string {
  const body: Record<string, unknown> = { error: error.code, message: error.message };
  if (error.retryAfterMs !== undefined) body.retryAfterMs = Math.max(0, Math.round(error.retryAfterMs));
  return JSON.stringify(body);
}

/** Error messages from plugins go to the model, so keep them short and single-line. */
export function describeError(error: unknown, maxLength = 300): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.replace(/\s+/g, ' ').trim() || 'unknown error';
  return line.length > maxLength ? `${line.slice(0, maxLength - 1)}…` : line;
}
