import type { MatrixArrival, MatrixWorkload } from './matrix';

/**
 * Naming and choosing the matrix's workloads (matrix.ts generates them): the line that describes
 * one, the label `--only` matches, a rough run time, and the selection `--only`, `--limit` and
 * `--quick` make.
 */

/** The arrival shapes, in the order the matrix deals them out. */
export const ARRIVALS: MatrixArrival[] = ['burst', 'ramp', 'open'];

/** One line that says everything needed to recognise (and with the seed, reproduce) a workload. */
export function describeWorkload(workload: MatrixWorkload): string {
  const { quota } = workload;
  const arrival =
    workload.arrival === 'burst'
      ? `${workload.chats} chats at once`
      : workload.arrival === 'ramp'
        ? `${workload.chats} chats ramping to ${((2 * workload.chats) / workload.arrivalS).toFixed(2)}/s (as run) over ${workload.arrivalS} s`
        : `Poisson ${(workload.arrivalRatePerS! * workload.scale).toFixed(2)}/s (as run) for ${workload.arrivalS} s (~${workload.chats} chats)`;
  return (
    `${workload.id} ${workload.arrival} ${workload.load.toFixed(2)}x, ${workload.instances} instance${workload.instances > 1 ? 's' : ''}, ` +
    `${workload.binding}-bound: R=${quota.rpm}/min C=${quota.concurrency} L=${(workload.callMs / 1000).toFixed(2)} s ` +
    `(first token ${quota.latencyMs} ms, ${quota.tps} chunks/s) -> ${workload.boundCallsPerS.toFixed(2)} calls/s; ` +
    `k=${workload.callsPerChat.toFixed(2)} calls/chat (search ${Math.round(workload.searchShare * 100)} %, ` +
    `revised ${Math.round(workload.reviseShare * 100)} %, AGENT_PARALLEL=${workload.agentParallel ? 'on' : 'off'}) ` +
    `-> capacity ${workload.capacityChatsPerS.toFixed(3)} chats/s; ${arrival}; scale ${workload.scale}; load seed ${workload.loadSeed}`
  );
}

/** A short label for the results folder and `--only`: "w07 open 1.80x 3 inst rpm". */
export function workloadLabel(workload: MatrixWorkload): string {
  return (
    `${workload.id} ${workload.arrival} ${workload.load.toFixed(2)}x ${workload.instances} inst ` +
    `${workload.binding} L${(workload.callMs / 1000).toFixed(2)}s k${workload.callsPerChat.toFixed(1)}`
  );
}

/**
 * Rough wall-clock seconds of a workload with its replay on this kind of machine: servers started
 * twice, arrivals twice, and each run's drain — the backlog the quota still has to serve when
 * arrivals stop, at most the chat deadline (admission keeps it there; without it chats end at it).
 */
export function estimatedSeconds(workload: MatrixWorkload, unscaledDeadlineS = 60): number {
  const deadlineS = unscaledDeadlineS / workload.scale;
  const startS = workload.instances > 1 ? 7 : 3;
  const chatS = (workload.callsPerChat * workload.callMs) / 1000 / workload.scale;
  const arrivalS = workload.arrival === 'burst' ? 1 : workload.arrivalS;
  const serveS = (workload.chats * workload.callsPerChat) / (workload.boundCallsPerS * workload.scale);
  const drainS = Math.min(deadlineS, Math.max(0, serveS - arrivalS) + chatS);
  return 2 * (startS + arrivalS + drainS + 1);
}

export interface MatrixSelection {
  /** Only the workloads whose label contains this (case-insensitive). */
  only?: string;
  /** The first N workloads (after --only). */
  limit?: number;
  /** A few short workloads: one per arrival shape, one of them on 3 instances. */
  quick?: boolean;
}

/** The workloads to run: all, --only, --limit, or --quick's three. */
export function selectWorkloads(workloads: MatrixWorkload[], selection: MatrixSelection): MatrixWorkload[] {
  let chosen = workloads;
  if (selection.only) {
    const needle = selection.only.toLowerCase();
    chosen = chosen.filter((workload) => workloadLabel(workload).toLowerCase().includes(needle));
  }
  if (selection.quick) {
    // The shortest of each arrival shape (by the estimate), the ramp's on 3 instances.
    const byTime = [...chosen].sort((a, b) => estimatedSeconds(a) - estimatedSeconds(b));
    const picks = ARRIVALS.map(
      (arrival) =>
        byTime.find(
          (workload) =>
            workload.arrival === arrival &&
            (arrival === 'ramp' ? workload.instances === 3 : workload.instances === 1),
        ) ?? byTime.find((workload) => workload.arrival === arrival),
    ).filter((workload): workload is MatrixWorkload => workload !== undefined);
    chosen = chosen.filter((workload) => picks.includes(workload));
  }
  if (selection.limit !== undefined) chosen = chosen.slice(0, selection.limit);
  return chosen;
}
