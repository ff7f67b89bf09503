import client from 'prom-client';
import type { LlmControl } from '../llm/llm-control';

/**
 * Each provider endpoint apart (LLM_ENDPOINTS_FILE; one `default` without it): its breaker, its
 * calls, its quota, its outcomes and its fallbacks, all read at scrape time.
 */
export function registerEndpointMetrics(registry: client.Registry, scheduler: LlmControl): void {
  const registers = [registry];
  new client.Gauge({
    name: 'troupe_llm_endpoint_breaker_open',
    help: "1 while an endpoint's circuit breaker is open, 0.5 half-open, 0 closed",
    labelNames: ['endpoint'],
    registers,
    collect() {
      for (const endpoint of scheduler.endpoints()) {
        const state = endpoint.breaker;
        this.set({ endpoint: endpoint.name }, state === 'open' ? 1 : state === 'half_open' ? 0.5 : 0);
      }
    },
  });
  new client.Gauge({
    name: 'troupe_llm_endpoint_calls',
    help: "An endpoint's LLM calls: waiting in its queue, in flight, started in the last 60 s",
    labelNames: ['endpoint', 'state'],
    registers,
    collect() {
      for (const endpoint of scheduler.endpoints()) {
        this.set({ endpoint: endpoint.name, state: 'queued' }, endpoint.queueLength);
        this.set({ endpoint: endpoint.name, state: 'in_flight' }, endpoint.activeRequests);
        this.set({ endpoint: endpoint.name, state: 'started_last_minute' }, endpoint.currentRPM);
      }
    },
  });
  new client.Gauge({
    name: 'troupe_llm_endpoint_limit',
    help: "An endpoint's configured quota: concurrency, requests and tokens per minute (0 = none)",
    labelNames: ['endpoint', 'limit'],
    registers,
    collect() {
      for (const endpoint of scheduler.endpoints()) {
        this.set({ endpoint: endpoint.name, limit: 'concurrency' }, endpoint.maxConcurrency);
        this.set({ endpoint: endpoint.name, limit: 'rpm' }, endpoint.maxRPM);
        this.set({ endpoint: endpoint.name, limit: 'tpm' }, endpoint.maxTPM);
      }
    },
  });
  new client.Counter({
    name: 'troupe_llm_endpoint_outcomes_total',
    help: "An endpoint's LLM calls by outcome, and its 429 answers",
    labelNames: ['endpoint', 'outcome'],
    registers,
    collect() {
      this.reset();
      for (const endpoint of scheduler.endpoints()) {
        this.inc({ endpoint: endpoint.name, outcome: 'success' }, endpoint.totalSuccess);
        this.inc({ endpoint: endpoint.name, outcome: 'failed' }, endpoint.totalFailed);
        this.inc({ endpoint: endpoint.name, outcome: 'timeout' }, endpoint.totalTimeout);
        this.inc({ endpoint: endpoint.name, outcome: 'rate_limited' }, endpoint.rateLimited);
      }
    },
  });
  new client.Counter({
    name: 'troupe_llm_endpoint_fallbacks_total',
    help: 'Calls that left an endpoint (failed before the first token), passed it by, or were served by it as a fallback',
    labelNames: ['endpoint', 'event'],
    registers,
    collect() {
      this.reset();
      for (const endpoint of scheduler.endpoints()) {
        this.inc({ endpoint: endpoint.name, event: 'left' }, endpoint.fallbacks.left);
        this.inc({ endpoint: endpoint.name, event: 'skipped' }, endpoint.fallbacks.skipped);
        this.inc({ endpoint: endpoint.name, event: 'served' }, endpoint.fallbacks.servedAsFallback);
      }
    },
  });
}
