import type { AgentName } from '../agents/agent-name';
import type { ErrorCode } from '../errors';
import type { Usage } from '../llm/provider';

/** The events of one run, exactly as the README's HTTP API section names them; the SSE writer sends them as is. */
export interface RunEventMap {
  run: { runId: string; conversationId: string };
  /**
   * Waiting for an SSE slot (with `token` to come back with), or — `paused: true` — for an operator
   * to resume the LLM queue (`position` is then the LLM queue's length; how long is unknown).
   */
  queued:
    | { position: number; estimatedWaitMs: number | null; token: string }
    | { position: number; estimatedWaitMs: null; paused: true };
  agent_start: { agent: AgentName };
  delta: { agent: AgentName; text: string };
  /** A thinking model's reasoning as it streams: shown apart, never part of the answer or the next agent's input. */
  reasoning: { agent: AgentName; text: string };
  tool_call: { agent: AgentName; callId: string; tool: string; args: unknown };
  tool_result: { callId: string; tool: string; ok: boolean; cached: boolean; latencyMs: number };
  /** `cached`: every LLM call of the turn was answered without a provider call (response cache). */
  agent_end: { agent: AgentName; usage: Usage; waitMs: number; processMs: number; cached: boolean };
  done: {
    conversationId: string;
    messageId: string;
    answer: string;
    usage: Usage;
    timings: { totalMs: number; queueWaitMs: number };
  };
  error: { code: ErrorCode; message: string; retryAfterMs?: number };
}

export type RunEventName = keyof RunEventMap;

export type RunEvent = {
  [K in RunEventName]: { id: number; event: K; data: RunEventMap[K] };
}[RunEventName];

/** A run's last event is always one of these; after it the stream closes. */
export function isTerminal(event: RunEventName): boolean {
  return event === 'done' || event === 'error';
}

/** Where the orchestrator sends events; it never writes to HTTP itself. */
export type EmitEvent = <K extends RunEventName>(event: K, data: RunEventMap[K]) => void;
