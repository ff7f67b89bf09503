import type { LlmControl } from '../llm/llm-control';
import type { RunRegistry } from '../streaming/run-registry';
import type { ToolExecutor } from '../tools/tool-executor';
import type { AlertSample } from './alert-conditions';

/**
 * Reads an AlertSample from the live parts. Chat outcomes are counted as runs end (the registry
 * tells; a chat refused while it waited ends as `overloaded`); refusals before a chat existed are
 * the chat line's 503s and the queue bound's.
 */
export function createAlertSampler(deps: {
  scheduler: LlmControl;
  /** The chat line's figures (GET /api/sse/status). */
  line: () => { refused: number };
  tools: ToolExecutor;
  runs: RunRegistry;
  redisUp?: () => boolean;
}): () => AlertSample {
  const chats = { ended: 0, failed: 0, cancelled: 0 };
  deps.runs.onFinished((_run, terminal) => {
    chats.ended++;
    if (terminal.event !== 'error') return;
    if (terminal.data.code === 'cancelled') chats.cancelled++;
    else chats.failed++;
  });
  return () => {
    const status = deps.scheduler.status();
    const endpoints = deps.scheduler.endpoints();
    return {
      rateLimited: status.counters.rateLimited,
      queueLength: status.queueLength,
      providerBreaker: status.breaker,
      providerUnavailable: status.unavailable?.reason,
      openToolCircuits: deps.tools
        .status()
        .tools.filter((tool) => tool.circuit === 'open')
        .map((tool) => tool.name),
      p95WaitMs: status.p95WaitTime,
      chatsEnded: chats.ended,
      chatsFailed: chats.failed,
      chatsCancelled: chats.cancelled,
      chatsRefused: status.counters.shed + deps.line().refused,
      redisUp: deps.redisUp?.(),
      openEndpoints: endpoints
        .filter((endpoint) => endpoint.breaker === 'open')
        .map((endpoint) => endpoint.name),
      rateLimitedByEndpoint: Object.fromEntries(
        endpoints.map((endpoint) => [endpoint.name, endpoint.rateLimited]),
      ),
    };
  };
}
