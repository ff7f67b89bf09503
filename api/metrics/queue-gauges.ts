import client from 'prom-client';
import { WAIT_REASONS } from '../llm/wait-reasons';
import type { LlmControl } from '../llm/llm-control';

/** The queue's gauges, read at scrape time: waiting, in flight, this instance's calls running. */
export function registerQueueGauges(registry: client.Registry, scheduler: LlmControl): void {
  const registers = [registry];
  new client.Gauge({
    name: 'troupe_llm_queue_length',
    help: 'LLM calls waiting in the queue',
    registers,
    collect() {
      this.set(scheduler.status().queueLength);
    },
  });
  new client.Gauge({
    name: 'troupe_llm_in_flight',
    help: 'LLM calls in flight with the provider',
    registers,
    collect() {
      this.set(scheduler.status().activeRequests);
    },
  });
  new client.Gauge({
    name: 'troupe_llm_calls_running',
    help: "This instance's LLM calls in flight at the provider (troupe_llm_in_flight is the shared quota's count)",
    registers,
    collect() {
      this.set(scheduler.activeCount());
    },
  });
}

/**
 * The limits in force and what holds the waiting calls, read at scrape time (registered after the
 * lease gauges, so /metrics keeps its order).
 */
export function registerLimitGauges(registry: client.Registry, scheduler: LlmControl): void {
  const registers = [registry];
  new client.Gauge({
    name: 'troupe_llm_effective_limit',
    help: 'Effective (AIMD) limits: concurrency and requests per minute',
    labelNames: ['limit'],
    registers,
    collect() {
      const effective = scheduler.status().effective;
      this.set({ limit: 'concurrency' }, effective.maxConcurrency);
      this.set({ limit: 'rpm' }, effective.maxRPM);
    },
  });
  new client.Gauge({
    name: 'troupe_llm_current_rpm',
    help: 'Provider calls started in the last 60 s',
    registers,
    collect() {
      this.set(scheduler.status().currentRPM);
    },
  });
  new client.Gauge({
    name: 'troupe_llm_waiting_calls',
    help: 'LLM calls waiting for a slot, by what holds them now (queue.waitReasons.now)',
    labelNames: ['reason'],
    registers,
    collect() {
      const { now, waitingCalls } = scheduler.status().waitReasons;
      for (const reason of WAIT_REASONS) this.set({ reason }, reason === now ? waitingCalls : 0);
    },
  });
  new client.Gauge({
    name: 'troupe_llm_wait_last_minute_seconds',
    help: 'Call-seconds waited in the last minute, by what held the calls (queue.waitReasons.lastMinute)',
    labelNames: ['reason'],
    registers,
    collect() {
      const { byReason } = scheduler.status().waitReasons.lastMinute;
      for (const reason of WAIT_REASONS) this.set({ reason }, byReason[reason] / 1000);
    },
  });
}

/** 1 while an operator has paused the queue. */
export function registerPausedGauge(registry: client.Registry, scheduler: LlmControl): void {
  const registers = [registry];
  new client.Gauge({
    name: 'troupe_llm_paused',
    help: '1 while an operator has paused the queue',
    registers,
    collect() {
      this.set(scheduler.status().paused ? 1 : 0);
    },
  });
}
