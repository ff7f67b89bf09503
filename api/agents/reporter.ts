import type { ToolOutcome } from '../tools/tool-runner';
import type { AgentSpec } from './base-agent';
import { ASSISTANT_PROMPT, REPORTER_PROMPT } from './prompts';

/** Writes the final answer the user reads, from the approved plan and the research notes. */
export const reporter: AgentSpec = { name: 'reporter', systemPrompt: REPORTER_PROMPT, temperature: 0.5 };

/** `single` mode: one answering call, scheduled in the Reporter's (last-stage) class. */
export const assistant: AgentSpec = {
  name: 'reporter',
  systemPrompt: ASSISTANT_PROMPT,
  tools: ['search_web'],
  temperature: 0.5,
};

export function reporterInput(
  userMessage: string,
  brief: string,
  plan: string,
  critique: string,
  research: ToolOutcome[],
): string {
  const parts = [
    `User request:\n${userMessage}`,
    `Host's brief:\n${brief}`,
    `Approved plan:\n${plan}`,
    `Critic's notes:\n${critique}`,
  ];
  const notes = research.filter((outcome) => outcome.ok).map((outcome) => outcome.content);
  if (notes.length > 0) parts.push(`Research notes:\n${notes.join('\n\n')}`);
  parts.push('Write the final answer for the user.');
  return parts.join('\n\n');
}
