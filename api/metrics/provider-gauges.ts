import client from 'prom-client';
import type { LlmControl } from '../llm/llm-control';

/** The provider-wide circuit breaker's state (1 open, 0.5 half-open, 0 closed). */
export function registerBreakerGauge(registry: client.Registry, scheduler: LlmControl): void {
  const registers = [registry];
  new client.Gauge({
    name: 'troupe_llm_breaker_open',
    help: '1 while the provider circuit breaker is open, 0.5 half-open, 0 closed',
    registers,
    collect() {
      const state = scheduler.breakerState();
      this.set(state === 'open' ? 1 : state === 'half_open' ? 0.5 : 0);
    },
  });
}

/** Whether the provider refuses every call until a person acts, and why. */
export function registerProviderAvailabilityGauge(registry: client.Registry, scheduler: LlmControl): void {
  const registers = [registry];
  new client.Gauge({
    name: 'troupe_llm_provider_unavailable',
    help: '1 while the provider refuses every call until a person acts, labelled with why (else 0, reason none)',
    labelNames: ['reason'],
    registers,
    collect() {
      const unavailable = scheduler.providerAvailability().unavailable;
      this.reset();
      this.set({ reason: unavailable?.reason ?? 'none' }, unavailable ? 1 : 0);
    },
  });
}
