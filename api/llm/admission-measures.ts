import type { Clock } from '../clock';
import { LineMeter, type ServiceSample } from './line-meter';
import { RunLedger } from './run-ledger';

/** How long measurements speak for the line without a chat deadline to size it (CHAT_TIMEOUT_MS=0). */
const DEFAULT_MEASURE_AGE_MS = 60_000;

/** What admission's measures tell, and hear from, the other instances of a cluster (api/cluster/admission-news.ts). */
export interface AdmissionNewsPort {
  served(served: ServiceSample): void;
  lateStarted(runId: string, deadline: number, calls: number): void;
  lateCalled(runId: string): void;
  lateEnded(runId: string): void;
  lateElsewhere(): readonly number[];
}

/**
 * Part of the composition root: what admission reads (docs/ARCHITECTURE.md §4) — recent chats' run
 * times, service and calls (the line meter) and what each running chat's calls do (the run ledger,
 * which reads calls per chat from the meter). In a cluster both tell the other instances and count
 * theirs through `news()`, which is undefined on one instance (and until the cluster is built).
 */
export function createAdmissionMeasures(options: {
  clock: Clock;
  chatTimeoutMs: number;
  news: () => AdmissionNewsPort | undefined;
}): { meter: LineMeter; ledger: RunLedger } {
  const { clock, news } = options;
  const maxAgeMs = options.chatTimeoutMs || DEFAULT_MEASURE_AGE_MS;
  const meter = new LineMeter({ clock, maxAgeMs, onServed: (served) => news()?.served(served) });
  const ledger = new RunLedger({
    clock,
    maxAgeMs,
    callsPerChat: (fraction) => meter.serviceQuantiles(fraction)?.calls,
    lateElsewhere: () => news()?.lateElsewhere() ?? [],
    onLate: (runId, deadline, calls) => news()?.lateStarted(runId, deadline, calls),
    onLateCall: (runId) => news()?.lateCalled(runId),
    onLateEnded: (runId) => news()?.lateEnded(runId),
  });
  return { meter, ledger };
}
