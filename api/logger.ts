import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout (pino); one line per event, with the request id bound by the HTTP layer. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'troupe' }, timestamp: pino.stdTimeFunctions.isoTime });
}
