import type { AgentSpec } from './base-agent';
import { PLANNER_PROMPT } from './prompts';

/** Drafts (and, when the Critic asks, revises) the plan; the only agent given tools by default. */
export const planner: AgentSpec = {
  name: 'planner',
  systemPrompt: PLANNER_PROMPT,
  tools: ['search_web'],
  temperature: 0.3,
};

export function plannerInput(
  userMessage: string,
  brief: string,
  revision?: { previousPlan: string; critique: string },
): string {
  const parts = [`User request:\n${userMessage}`, `Host's brief:\n${brief}`];
  if (revision) {
    parts.push(`Your previous plan:\n${revision.previousPlan}`);
    parts.push(`Critic's feedback (revision requested):\n${revision.critique}`);
    parts.push('Write the revised plan.');
  } else {
    parts.push('Write the plan.');
  }
  return parts.join('\n\n');
}
