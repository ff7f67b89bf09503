/**
 * What never reaches a log line: credentials in headers, in fields that hold keys or tokens, and in
 * URLs (EventSource clients pass their API key as `?access_token=`). pino's `redact` covers
 * structured fields; `redactUrl` covers URLs logged as text.
 */

const SECRET_FIELDS = [
  'authorization',
  'Authorization',
  'cookie',
  'apiKey',
  'api_key',
  'apiKeys',
  'access_token',
  'accessToken',
  'token',
  'adminToken',
  'password',
  'secret',
  'x-api-key',
];

/** pino redact paths: the fields above at the top level, one level down, and in headers. */
export const REDACT_PATHS = [
  ...SECRET_FIELDS.map((field) => `["${field}"]`),
  ...SECRET_FIELDS.map((field) => `*["${field}"]`),
  ...SECRET_FIELDS.map((field) => `*.headers["${field}"]`),
  ...SECRET_FIELDS.map((field) => `*.*.headers["${field}"]`),
];

const SECRET_QUERY = /([?&](?:access_token|api_key|apikey|key|token|password)=)[^&#]*/gi;

/** The URL with the values of credential-like query parameters replaced by `[Redacted]`. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[Redacted]');
}
