/**
 * Run-time quantiles that count the chats still running (Kaplan–Meier, the product-limit estimator).
 *
 * Early in a burst the first chats to finish are the short ones; the long ones are still running.
 * A percentile over completed chats alone is then too low (survivorship), and a chat started on it
 * with too little time left times out having spent quota. A chat still running, or one that ended
 * without completing (timed out, failed, left), says "its run takes at least this long" — a censored
 * observation — and the estimator weighs it so: it stays in the at-risk set up to its elapsed time
 * and then leaves without counting as an end.
 */

/** One observation: `ms` run so far; `completed` = the run ended there (else censored at `ms`). */
export interface RunObservation {
  ms: number;
  completed: boolean;
}

/**
 * The `fraction` quantile of run time from `observations` sorted by `ms` ascending (at equal `ms`,
 * completed first: a run censored at t was still at risk at t). Undefined when none completed.
 * When censoring leaves the estimated survival above 1 − fraction at the last completion, the
 * quantile lies beyond what was seen: the longest observation is returned, a lower bound.
 */
export function runTimeQuantile(
  observations: readonly RunObservation[],
  fraction: number,
): number | undefined {
  let atRisk = observations.length;
  let survival = 1;
  let anyCompleted = false;
  const target = 1 - fraction;
  for (const { ms, completed } of observations) {
    if (completed) {
      anyCompleted = true;
      survival *= (atRisk - 1) / atRisk;
      // A whisker of tolerance: 0.99 of 100 equal completions must land on the 99th, not the 100th.
      if (survival <= target + 1e-9) return ms;
    }
    atRisk--;
  }
  if (!anyCompleted) return undefined;
  return observations[observations.length - 1].ms;
}

/** Orders observations for runTimeQuantile: by run time, completions before censorings. */
export function byRunTime(a: RunObservation, b: RunObservation): number {
  return a.ms - b.ms || Number(b.completed) - Number(a.completed);
}
