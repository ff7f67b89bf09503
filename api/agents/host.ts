import type { AgentSpec } from './base-agent';
import { HOST_PROMPT } from './prompts';

/** Frames the request: goal, audience, constraints, whether fresh information is needed. */
export const host: AgentSpec = { name: 'host', systemPrompt: HOST_PROMPT, temperature: 0.2 };

export function hostInput(userMessage: string): string {
  return userMessage;
}
