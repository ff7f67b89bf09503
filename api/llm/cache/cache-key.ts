import { createHash } from 'node:crypto';
import { stableStringify } from '../../tools/tool-cache';
import type { CompletionRequest } from '../provider';

/** Which model answers: part of every key, so a change of provider or model never serves old answers. */
export interface CacheScope {
  provider: string;
  model: string;
}

/**
 * The cache key of one call: sha256 over canonical JSON of the provider, the model, the whole
 * message list (system prompt, history, tool calls and tool results included), the tools offered
 * and every parameter that changes the output. Who asks (user, conversation, run) is deliberately
 * not part of it: identical prompts share answers across users, different ones never do.
 * Bump `v` when the request shape changes meaning.
 */
export function responseCacheKey(scope: CacheScope, request: CompletionRequest): string {
  const canonical = stableStringify({
    v: 1,
    provider: scope.provider,
    model: scope.model,
    messages: request.messages.map((message) => ({
      role: message.role,
      content: message.content,
      toolCalls: message.toolCalls,
      toolCallId: message.toolCallId,
    })),
    tools: request.tools ?? [],
    maxTokens: request.maxTokens,
    temperature: request.temperature,
    // Absent for agents' calls (their keys stay as they were); a gateway caller's seed, stop or
    // response_format changes the answer, so it is part of the key.
    extra: request.extra,
  });
  return createHash('sha256').update(canonical).digest('hex');
}
