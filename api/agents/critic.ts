import type { AgentSpec } from './base-agent';
import { CRITIC_PROMPT } from './prompts';

/** Reviews the plan and either approves it or sends it back once (CRITIC_MAX_ROUNDS) for revision. */
export const critic: AgentSpec = { name: 'critic', systemPrompt: CRITIC_PROMPT, temperature: 0 };

export type Verdict = 'approve' | 'revise';

export function criticInput(userMessage: string, brief: string, plan: string): string {
  return [
    `User request:\n${userMessage}`,
    `Host's brief:\n${brief}`,
    `Planner's plan:\n${plan}`,
    'Review the plan. First line: VERDICT: APPROVE or VERDICT: REVISE.',
  ].join('\n\n');
}

/**
 * The verdict from the Critic's text. A model that forgets the verdict line approves: a missing
 * verdict must not cost the user another round of provider calls.
 */
export function parseVerdict(text: string): Verdict {
  const match = /VERDICT\s*[:：]\s*(APPROVE|REVISE)/i.exec(text);
  return match && match[1].toUpperCase() === 'REVISE' ? 'revise' : 'approve';
}
