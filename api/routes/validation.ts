import type { z } from 'zod';
import { AppError } from '../errors';

/** Parses `value` with `schema`, or throws `invalid_request` saying which field is wrong and how. */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what = 'body'): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.length > 0 ? issue.path.join('.') : what;
  throw new AppError('invalid_request', `Invalid ${field}: ${issue.message}`);
}
