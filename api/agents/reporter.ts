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

/**
 * The Reporter's input: the request, the brief, the final plan and the research notes. The Critic's
 * text is part of it only when the plan reached the Reporter with the Critic still asking for a
 * revision (no rounds left): an approving review changes nothing the Reporter reads, which is what
 * lets the Reporter draft while the Critic reviews (AGENT_PARALLEL) and still write exactly what a
 * sequential run writes. An approval's points that matter belong in a revision of the plan.
 */
export function reporterInput(
  userMessage: string,
  brief: string,
  plan: string,
  research: ToolOutcome[],
  unresolvedCritique?: string,
): string {
  const parts = [`User request:\n${userMessage}`, `Host's brief:\n${brief}`];
  if (unresolvedCritique === undefined) parts.push(`Approved plan:\n${plan}`);
  else parts.push(`Plan:\n${plan}`, `Critic's notes (revision still requested):\n${unresolvedCritique}`);
  const notes = research.filter((outcome) => outcome.ok).map((outcome) => outcome.content);
  if (notes.length > 0) parts.push(`Research notes:\n${notes.join('\n\n')}`);
  parts.push('Write the final answer for the user.');
  return parts.join('\n\n');
}
