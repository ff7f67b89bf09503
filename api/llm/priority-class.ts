import { AGENT_NAMES, isAgentName, type AgentName } from '../agents/agent-name';

/**
 * The classes the request queue orders calls by: the four agents of a chat, and the classes of
 * the OpenAI-compatible gateway's callers (api/gateway/). They share one order (LLM_PRIORITY_ORDER)
 * and one aging rule, so a batch job's calls and a chat's calls compete by the same rules.
 */
export const GATEWAY_CLASSES = ['interactive', 'batch'] as const;
export type GatewayClass = (typeof GATEWAY_CLASSES)[number];

export type PriorityClass = AgentName | GatewayClass;

/** Every class, in the default order: the agents (the brief's order), then interactive, then batch. */
export const PRIORITY_CLASSES: readonly PriorityClass[] = [...AGENT_NAMES, ...GATEWAY_CLASSES];

export function isGatewayClass(value: unknown): value is GatewayClass {
  return typeof value === 'string' && (GATEWAY_CLASSES as readonly string[]).includes(value);
}

export function isPriorityClass(value: unknown): value is PriorityClass {
  return isAgentName(value) || isGatewayClass(value);
}

/**
 * The full order the queue uses: the configured one, then any class it leaves out in the default
 * order (the gateway classes rank below the agents unless LLM_PRIORITY_ORDER places them).
 */
export function completePriorityOrder(order: readonly PriorityClass[]): PriorityClass[] {
  return [...order, ...PRIORITY_CLASSES.filter((name) => !order.includes(name))];
}
