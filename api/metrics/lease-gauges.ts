import client from 'prom-client';
import type { LeaseFigures } from '../cluster/lease-figures';

/**
 * The shared quota's leases against the calls they stand for (api/cluster/lease-figures.ts): per
 * instance, and the cluster's count in Redis as this instance last heard it (every instance exports
 * the same figure: take max()). The alert TroupeLeasesDisagree compares it with the sum of
 * troupe_llm_calls_running.
 */
export function registerLeaseGauges(registry: client.Registry, leases: () => LeaseFigures): void {
  const registers = [registry];
  new client.Gauge({
    name: 'troupe_llm_leases_held',
    help: 'Concurrency leases this instance holds and renews in Redis (its calls the shared limiter granted)',
    registers,
    collect() {
      this.set(leases().instance.held);
    },
  });
  new client.Gauge({
    name: 'troupe_llm_leases_unreleased',
    help: 'Leases this instance is removing from Redis and Redis has not yet confirmed (lost releases, lost start answers)',
    registers,
    collect() {
      this.set(leases().instance.unreleased);
    },
  });
  new client.Gauge({
    name: 'troupe_llm_cluster_leases',
    help: 'Concurrency leases in Redis for the whole cluster, as this instance last heard',
    registers,
    collect() {
      this.set(leases().cluster.inRedis);
    },
  });
  new client.Gauge({
    name: 'troupe_llm_cluster_calls_running',
    help: "Every instance's LLM calls in flight at the provider, as last published (this one's live)",
    registers,
    collect() {
      this.set(leases().cluster.callsRunning);
    },
  });
}
