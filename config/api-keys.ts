import fs from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';

/**
 * Callers of the API: who a Bearer key speaks for, the priority class its gateway calls get, and
 * its own limits. From API_KEYS (`key:caller[:class]`, comma-separated) and API_KEYS_FILE (YAML or
 * JSON, below); docs/GATEWAY.md describes both.
 */

export type CallerClass = 'interactive' | 'batch';

export interface CallerLimits {
  /** Requests this caller may start per rolling minute. */
  rpm?: number;
  /** Estimated tokens (prompt + max output) per rolling minute, settled with the real usage. */
  tpm?: number;
  /** Requests in flight at once. */
  concurrency?: number;
}

export interface CallerKey {
  /** The caller's name: the user id of its chats and its fairness share in the queue. */
  caller: string;
  /** The class its /v1 calls are queued in (a request may lower it, never raise it). */
  priorityClass: CallerClass;
  limits: CallerLimits;
}

const NAME = /^[\w.@-]{1,128}$/;
const positive = z
  .number({ error: 'must be a number' })
  .int('must be an integer')
  .min(1, 'must be at least 1');

const keysFileSchema = z
  .object(
    {
      keys: z
        .array(
          z
            .object(
              {
                key: z
                  .string({ error: 'must be a string' })
                  .regex(/^\S{8,512}$/, 'must be 8–512 characters, no spaces'),
                caller: z
                  .string({ error: 'must be a string' })
                  .regex(NAME, 'must be 1–128 letters, digits, ".", "@", "-" or "_"'),
                class: z
                  .enum(['interactive', 'batch'], { error: 'must be "interactive" or "batch"' })
                  .default('interactive'),
                limits: z
                  .object(
                    { rpm: positive.optional(), tpm: positive.optional(), concurrency: positive.optional() },
                    { error: 'must be an object such as {rpm: 60, tpm: 100000, concurrency: 4}' },
                  )
                  .strict()
                  .default({}),
              },
              { error: 'must be an object such as {key, caller, class, limits}' },
            )
            .strict(),
          { error: 'must be a list' },
        )
        .min(1, 'must hold at least one key'),
    },
    { error: 'must be an object with a `keys` list' },
  )
  .strict();

/** A keys file that cannot be used; the message names the file and the field. */
export class KeysFileError extends Error {}

/** Reads and validates API_KEYS_FILE; throws KeysFileError with one line naming the bad field. */
export function readKeysFile(path: string): Map<string, CallerKey> {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw new KeysFileError(`cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let document: unknown;
  try {
    // YAML is a superset of JSON: one parser reads both forms.
    document = YAML.parse(text);
  } catch (error) {
    throw new KeysFileError(`is not valid YAML or JSON (${(error as Error).message.split('\n')[0]})`);
  }
  const result = keysFileSchema.safeParse(document);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue.path
      .map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`))
      .join('');
    throw new KeysFileError(`${field.replace(/^\./, '') || 'the file'}: ${issue.message}`);
  }
  const keys = new Map<string, CallerKey>();
  result.data.keys.forEach((entry, index) => {
    if (keys.has(entry.key)) throw new KeysFileError(`keys[${index}].key: appears twice`);
    keys.set(entry.key, { caller: entry.caller, priorityClass: entry.class, limits: entry.limits });
  });
  return keys;
}
