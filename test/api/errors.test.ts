import fs from 'node:fs';
import path from 'node:path';
import { AppError, ERROR_CODES, toAppError } from '../../api/errors';

describe('the error code registry', () => {
  test('README lists exactly the codes of api/errors.ts, with their HTTP statuses', () => {
    const readme = fs.readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## HTTP API'), readme.indexOf('| endpoint |'));
    const listed = [...section.matchAll(/`([a-z_]+)`/g)].map((match) => match[1]);
    expect([...new Set(listed)].sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const [, code, status] of section.matchAll(/`([a-z_]+)` (\d{3})/g)) {
      expect(ERROR_CODES[code as keyof typeof ERROR_CODES].status).toBe(Number(status));
    }
  });

  test('an AppError renders the JSON error shape, with retryAfterMs only when set', () => {
    expect(new AppError('overloaded', 'busy', { retryAfterMs: 1234.4 }).toBody()).toEqual({
      error: { code: 'overloaded', message: 'busy', retryAfterMs: 1234 },
    });
    expect(
      new AppError('overloaded', 'busy', {
        retryAfterMs: 2000,
        details: { estimatedWaitMs: 41_999.6 },
      }).toBody(),
    ).toEqual({
      error: { code: 'overloaded', message: 'busy', retryAfterMs: 2000, estimatedWaitMs: 42_000 },
    });
    expect(new AppError('not_found').toBody()).toEqual({
      error: { code: 'not_found', message: 'Not found' },
    });
  });

  test('unknown failures become internal without leaking their message', () => {
    const error = toAppError(new Error('secret connection string'));
    expect(error.code).toBe('internal');
    expect(error.message).not.toMatch(/secret/);
  });
});
