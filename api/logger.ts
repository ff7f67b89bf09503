import pino, { type Logger } from 'pino';
import { REDACT_PATHS } from './log-redaction';

export type { Logger };

/**
 * JSON logs on stdout (pino); one line per event, with the request id bound by the HTTP layer.
 * Credentials are redacted wherever they appear as fields (see log-redaction.ts).
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'troupe' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
    },
    destination,
  );
}
