/** The four agents of a multi-agent chat, in the brief's order of priority. */
export const AGENT_NAMES = ['host', 'planner', 'critic', 'reporter'] as const;
export type AgentName = (typeof AGENT_NAMES)[number];

export function isAgentName(value: unknown): value is AgentName {
  return typeof value === 'string' && (AGENT_NAMES as readonly string[]).includes(value);
}
