import { Writable } from 'node:stream';
import { createLogger } from '../../api/logger';

/** A real (pino) logger whose JSON lines are kept, to assert what was logged and at which level. */
export function capturingLogger(level = 'debug') {
  const lines: Array<{ level: number; msg?: string; [field: string]: unknown }> = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line));
      }
      done();
    },
  });
  return {
    logger: createLogger(level, destination),
    lines,
    raw,
    /** Lines at error level or above (pino: error 50, fatal 60). */
    errors: () => lines.filter((line) => line.level >= 50),
  };
}
