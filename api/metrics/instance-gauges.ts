import client from 'prom-client';
import type { RunRegistry } from '../streaming/run-registry';

/** Chats that ended, by outcome (counted as each run finishes). */
export function registerChatOutcomes(registry: client.Registry, runs: RunRegistry): void {
  const registers = [registry];
  // The error rate people watch is of chats, not of LLM calls: each started chat ends once, here.
  const chats = new client.Counter({
    name: 'troupe_chats_total',
    help: 'Chats that ended, by outcome: done, or the error code (cancelled = the client left)',
    labelNames: ['outcome'],
    registers,
  });
  runs.onFinished((_run, terminal) => {
    chats.inc({ outcome: terminal.event === 'error' ? terminal.data.code : 'done' });
  });
}

/** 1 while the Redis at REDIS_URL is connected, 0 when it is not. */
export function registerRedisUpGauge(registry: client.Registry, redisUp: () => boolean): void {
  const registers = [registry];
  new client.Gauge({
    name: 'troupe_redis_up',
    help: '1 while the Redis at REDIS_URL is connected, 0 when it is not',
    registers,
    collect() {
      this.set(redisUp() ? 1 : 0);
    },
  });
}

/** The p95 queue wait the alert rules compare against (ALERT_WAIT_P95_MS). */
export function registerWaitTargetGauge(registry: client.Registry, waitTargetMs: number): void {
  const registers = [registry];
  new client.Gauge({
    name: 'troupe_llm_wait_target_seconds',
    help: 'The p95 queue wait over which an alert fires (ALERT_WAIT_P95_MS)',
    registers,
  }).set(waitTargetMs / 1000);
}

/** SSE runs streaming and waiting for a slot. */
export function registerSseGauge(
  registry: client.Registry,
  sse: () => { active: number; waiting: number },
): void {
  const registers = [registry];
  new client.Gauge({
    name: 'troupe_sse_streams',
    help: 'SSE runs streaming (active) and waiting for a slot',
    labelNames: ['state'],
    registers,
    collect() {
      const status = sse();
      this.set({ state: 'active' }, status.active);
      this.set({ state: 'waiting' }, status.waiting);
    },
  });
}
