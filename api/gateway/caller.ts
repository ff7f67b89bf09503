import { timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import type { Config } from '../../config';
import type { CallerClass, CallerLimits } from '../../config/api-keys';
import { AppError } from '../errors';
import { GATEWAY_CLASSES } from '../llm/priority-class';

/**
 * Who calls the gateway, in which priority class, under which limits. With API_KEYS or
 * API_KEYS_FILE set the Bearer key decides all three (and is required); without keys every
 * request is `anonymous` in the default class, as on /api/chat.
 *
 * `X-Troupe-Priority` may lower the class for one request (an interactive service sending a
 * background job), never raise it: a batch key asking for `interactive` stays batch.
 */

export const PRIORITY_HEADER = 'x-troupe-priority';

/** Without keys, and for keys that name no class. */
export const DEFAULT_CLASS: CallerClass = 'interactive';

export interface Caller {
  name: string;
  priorityClass: CallerClass;
  limits: CallerLimits;
  /** The key it came with; limits are kept per key. Absent without API keys. */
  key?: string;
}

export function resolveCaller(req: Request, config: Config): Caller {
  const caller = identify(req, config);
  const requested = req.get(PRIORITY_HEADER);
  if (requested === undefined) return caller;
  const asked = requested.trim().toLowerCase();
  if (!(GATEWAY_CLASSES as readonly string[]).includes(asked)) {
    throw new AppError('invalid_request', `X-Troupe-Priority: must be one of ${GATEWAY_CLASSES.join(', ')}`);
  }
  // The classes are listed highest first: a later one is lower.
  const lower = GATEWAY_CLASSES.indexOf(asked as CallerClass) > GATEWAY_CLASSES.indexOf(caller.priorityClass);
  return lower ? { ...caller, priorityClass: asked as CallerClass } : caller;
}

function identify(req: Request, config: Config): Caller {
  if (config.callerKeys.size === 0) return { name: 'anonymous', priorityClass: DEFAULT_CLASS, limits: {} };
  const match = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
  const token = match?.[1];
  if (!token) throw new AppError('unauthorized', 'Send your API key as "Authorization: Bearer <key>"');
  for (const [key, entry] of config.callerKeys) {
    if (safeEqual(key, token)) {
      return { name: entry.caller, priorityClass: entry.priorityClass, limits: entry.limits, key };
    }
  }
  throw new AppError('unauthorized', 'Unknown API key');
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
