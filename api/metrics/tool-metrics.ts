import client from 'prom-client';
import type { ToolExecutor } from '../tools/tool-executor';
import { TIME_BUCKETS_SECONDS } from './metric-buckets';

/**
 * Tool calls by result and cache use, and their latency. The series exist from the start (zero
 * until a tool runs); `observe` hooks them to the executor and adds the circuits' gauge.
 */
export class ToolMetrics {
  private readonly toolCalls: client.Counter<'tool' | 'result' | 'cached'>;
  private readonly toolLatency: client.Histogram<'tool'>;

  constructor(private readonly registry: client.Registry) {
    const registers = [registry];
    this.toolCalls = new client.Counter({
      name: 'troupe_tool_calls_total',
      help: 'Tool calls, by result (ok or error code) and cache use',
      labelNames: ['tool', 'result', 'cached'],
      registers,
    });
    this.toolLatency = new client.Histogram({
      name: 'troupe_tool_latency_seconds',
      help: 'Tool call latency',
      labelNames: ['tool'],
      buckets: TIME_BUCKETS_SECONDS,
      registers,
    });
  }

  /** Tool outcomes as they happen, and the circuits' state at scrape time. */
  observe(tools: ToolExecutor): void {
    const registers = [this.registry];
    new client.Gauge({
      name: 'troupe_tool_circuit_open',
      help: '1 while a tool circuit is open, 0.5 half-open, 0 closed',
      labelNames: ['tool'],
      registers,
      collect() {
        for (const tool of tools.status().tools) {
          this.set({ tool: tool.name }, tool.circuit === 'open' ? 1 : tool.circuit === 'half_open' ? 0.5 : 0);
        }
      },
    });
    tools.onOutcome((outcome) => {
      this.toolCalls.inc({
        tool: outcome.tool,
        result: outcome.ok ? 'ok' : (outcome.errorCode ?? 'error'),
        cached: String(outcome.cached),
      });
      this.toolLatency.observe({ tool: outcome.tool }, outcome.latencyMs / 1000);
    });
  }
}
