import { z } from 'zod';
import { ToolError, describeError } from './tool-errors';
import type { AnyToolPlugin } from './tool-plugin';

/**
 * A model's raw tool arguments, parsed and checked against the plugin's schema. Throws
 * invalid_arguments with a message the model can act on: what was wrong, and the JSON schema
 * (`schemaText`) to call again with. Empty arguments read as `{}`.
 */
export function parseToolArguments(plugin: AnyToolPlugin, schemaText: string, raw: string): unknown {
  const name = plugin.name;
  let value: unknown;
  try {
    value = raw.trim() === '' ? {} : JSON.parse(raw);
  } catch (error) {
    throw new ToolError(
      'invalid_arguments',
      `The arguments for ${name} are not valid JSON (${describeError(error, 120)}). ` +
        `Call ${name} again with a JSON object matching this schema: ${schemaText}`,
    );
  }
  const parsed = plugin.parameters.safeParse(value);
  if (!parsed.success) {
    const problems = z
      .prettifyError(parsed.error)
      .replace(/\s*\n\s*/g, ' ')
      .replace(/✖ /g, '')
      .trim();
    throw new ToolError(
      'invalid_arguments',
      `Invalid arguments for ${name}: ${problems}. ` +
        `Call ${name} again with a JSON object matching this schema: ${schemaText}`,
    );
  }
  return parsed.data;
}
