import client from 'prom-client';
import type { SchedulerEvent, SchedulerMetrics } from '../llm/scheduler-events';
import { TIME_BUCKETS_SECONDS } from './metric-buckets';

/** The scheduler's events as counters and histograms (SchedulerMetrics): starts, outcomes, waits. */
export class LlmCallMetrics implements SchedulerMetrics {
  private readonly starts: client.Counter<'agent'>;
  private readonly outcomes: client.Counter<'agent' | 'outcome' | 'code'>;
  private readonly rateLimited: client.Counter<'agent'>;
  private readonly retries: client.Counter<'agent'>;
  private readonly timeouts: client.Counter<'agent' | 'where'>;
  private readonly shed: client.Counter<'reason'>;
  private readonly reasoningDeltas: client.Counter<'agent'>;
  private readonly firstByteTimeouts: client.Counter<'agent'>;
  private readonly providerRefusals: client.Counter<'reason'>;
  private readonly waitSeconds: client.Histogram<'agent'>;
  private readonly processSeconds: client.Histogram<'agent'>;

  constructor(registry: client.Registry) {
    const registers = [registry];
    this.starts = new client.Counter({
      name: 'troupe_llm_starts_total',
      help: 'Provider calls started (each retry attempt counts)',
      labelNames: ['agent'],
      registers,
    });
    this.outcomes = new client.Counter({
      name: 'troupe_llm_calls_total',
      help: 'Scheduled LLM calls finished, by outcome',
      labelNames: ['agent', 'outcome', 'code'],
      registers,
    });
    this.rateLimited = new client.Counter({
      name: 'troupe_llm_provider_429_total',
      help: 'Provider answers of 429 (rate limited)',
      labelNames: ['agent'],
      registers,
    });
    this.retries = new client.Counter({
      name: 'troupe_llm_retries_total',
      help: 'Provider call retries',
      labelNames: ['agent'],
      registers,
    });
    this.timeouts = new client.Counter({
      name: 'troupe_llm_timeouts_total',
      help: 'LLM calls that ran out of time, in the queue or in flight',
      labelNames: ['agent', 'where'],
      registers,
    });
    this.shed = new client.Counter({
      name: 'troupe_llm_shed_total',
      help: 'Chats or calls refused early (admission control, queue bound)',
      labelNames: ['reason'],
      registers,
    });
    this.reasoningDeltas = new client.Counter({
      name: 'troupe_llm_reasoning_deltas_total',
      help: 'Reasoning pieces a thinking model streamed (the `reasoning` event), never part of the answer',
      labelNames: ['agent'],
      registers,
    });
    this.firstByteTimeouts = new client.Counter({
      name: 'troupe_llm_first_byte_timeouts_total',
      help: 'Provider calls that got no byte within the first-byte timeout (a hanging provider)',
      labelNames: ['agent'],
      registers,
    });
    this.providerRefusals = new client.Counter({
      name: 'troupe_llm_provider_refusals_total',
      help: 'Provider refusals only a person can end (quota used up, spending limit, overdue bill, key, model)',
      labelNames: ['reason'],
      registers,
    });
    this.waitSeconds = new client.Histogram({
      name: 'troupe_llm_wait_seconds',
      help: 'Time LLM calls waited in the queue',
      labelNames: ['agent'],
      buckets: TIME_BUCKETS_SECONDS,
      registers,
    });
    this.processSeconds = new client.Histogram({
      name: 'troupe_llm_process_seconds',
      help: 'Time LLM calls spent with the provider',
      labelNames: ['agent'],
      buckets: TIME_BUCKETS_SECONDS,
      registers,
    });
  }

  /** The scheduler's events (SchedulerMetrics). */
  record(event: SchedulerEvent): void {
    switch (event.type) {
      case 'start':
        this.starts.inc({ agent: event.agentType });
        this.waitSeconds.observe({ agent: event.agentType }, event.waitMs / 1000);
        break;
      case 'end':
        this.outcomes.inc({ agent: event.agentType, outcome: event.outcome, code: event.code ?? '' });
        if (event.outcome !== 'cancelled')
          this.processSeconds.observe({ agent: event.agentType }, event.processMs / 1000);
        break;
      case 'rate_limited':
        this.rateLimited.inc({ agent: event.agentType });
        break;
      case 'retry':
        this.retries.inc({ agent: event.agentType });
        break;
      case 'timeout':
        this.timeouts.inc({ agent: event.agentType, where: event.where });
        break;
      case 'shed':
        this.shed.inc({ reason: event.reason });
        break;
      case 'reasoning':
        this.reasoningDeltas.inc({ agent: event.agentType }, event.deltas);
        break;
      case 'first_byte_timeout':
        this.firstByteTimeouts.inc({ agent: event.agentType });
        break;
      case 'provider_refused':
        this.providerRefusals.inc({ reason: event.reason });
        break;
      case 'breaker':
        break;
    }
  }
}
