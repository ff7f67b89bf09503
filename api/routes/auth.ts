import { timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Config } from '../../config';
import { AppError } from '../errors';

const USER_ID = /^[\w.@-]{1,128}$/;

/**
 * Who is chatting. With API_KEYS set the Bearer key decides (and is required); otherwise the
 * X-User-Id header, else the body's userId, else "anonymous".
 */
export function resolveUser(
  req: Request,
  config: Config,
  bodyUserId?: string,
  options: { allowQueryKey?: boolean } = {},
): string {
  if (config.apiKeys.size > 0) {
    // EventSource cannot send headers, so its routes may take the key as ?access_token=.
    const queryKey = options.allowQueryKey ? req.query.access_token : undefined;
    const key = bearerToken(req) ?? (typeof queryKey === 'string' ? queryKey : undefined);
    if (!key) throw new AppError('unauthorized', 'Send your API key as "Authorization: Bearer <key>"');
    for (const [candidate, userId] of config.apiKeys) if (safeEqual(candidate, key)) return userId;
    throw new AppError('unauthorized', 'Unknown API key');
  }
  const header = req.get('x-user-id');
  if (header !== undefined) {
    if (!USER_ID.test(header)) {
      throw new AppError(
        'invalid_request',
        'Invalid X-User-Id: must be 1–128 letters, digits, ".", "@", "-" or "_"',
      );
    }
    return header;
  }
  return bodyUserId ?? 'anonymous';
}

/** Guards the emergency controls (pause, resume, clear) with ADMIN_TOKEN. */
export function requireAdmin(config: Config) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (!config.adminToken) {
      throw new AppError('forbidden', 'Admin endpoints are disabled: set ADMIN_TOKEN to enable them');
    }
    const token = bearerToken(req);
    if (!token || !safeEqual(token, config.adminToken)) {
      throw new AppError('unauthorized', 'Send the admin token as "Authorization: Bearer <ADMIN_TOKEN>"');
    }
    next();
  };
}

/**
 * Whether the caller proved to be the operator: a valid `Authorization: Bearer <ADMIN_TOKEN>`.
 * No token at all is simply "not the operator"; a wrong one is refused (401) so a typo is noticed.
 */
export function isAdmin(req: Request, config: Config): boolean {
  const token = bearerToken(req);
  if (!token || !config.adminToken) return false;
  if (safeEqual(token, config.adminToken)) return true;
  if (config.apiKeys.size > 0 && [...config.apiKeys.keys()].some((key) => safeEqual(key, token)))
    return false;
  throw new AppError('unauthorized', 'Send the admin token as "Authorization: Bearer <ADMIN_TOKEN>"');
}

function bearerToken(req: Request): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
  return match?.[1];
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
