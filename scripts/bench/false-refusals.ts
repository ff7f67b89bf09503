import type { BenchReport } from './bench-report';
import type { ChatRecord } from './chat-client';
import type { applyScale } from './scenarios';

/**
 * A false refusal is a chat refused although it would have finished in time. Two witnesses, and a
 * refusal is counted false only as far as both agree:
 * - the same user's chat in the replay without admission completed within the chat's deadline
 *   (CHAT_TIMEOUT_MS as run; 0 = no deadline) — `refusedWhoseTwinCompleted`. On its own this
 *   overcounts wherever arrival order is arbitrary: in a burst that arrives at once, which users
 *   the replay happens to serve is chance, and a refused user whose twin was lucky is not evidence
 *   that one more chat could have been served;
 * - the quota bound: at mu calls/s and k calls per completed chat, no scheduler completes more than
 *   mu × (arrival span + deadline) / k chats within their deadlines, so at least the rest must be
 *   refused or fail — `forcedByBound`. Refusals beyond that number are false at most; the bound
 *   ignores ramps and run time, so it errs against admission.
 * falseRefusals = min(refusedWhoseTwinCompleted, refused − forcedByBound).
 */
export function countFalseRefusals(
  records: ChatRecord[],
  replay: ChatRecord[],
  run: Pick<ReturnType<typeof applyScale>, 'troupeEnv'>,
  admission: BenchReport['admission'],
  bound?: { callsPerS: number; callsPerChat: number },
): BenchReport['admission'] {
  const targetMs = Number(run.troupeEnv.CHAT_TIMEOUT_MS ?? 60_000) || Infinity;
  const replayed = new Map<string, ChatRecord>();
  const seen = new Map<number, number>();
  const key = (record: ChatRecord, order: Map<number, number>) => {
    const index = order.get(record.user) ?? 0;
    order.set(record.user, index + 1);
    return `${record.user}#${index}`;
  };
  for (const record of [...replay].sort((a, b) => a.sentAt - b.sentAt))
    replayed.set(key(record, seen), record);
  seen.clear();
  let refusedWhoseTwinCompleted = 0;
  let refused = 0;
  for (const record of [...records].sort((a, b) => a.sentAt - b.sentAt)) {
    const twin = replayed.get(key(record, seen));
    if (record.outcome === 'refused') refused++;
    if (record.outcome !== 'refused' || !twin) continue;
    if (twin.outcome === 'completed' && (twin.completionMs ?? Infinity) <= targetMs)
      refusedWhoseTwinCompleted++;
  }
  const forcedByBound = bound === undefined ? 0 : quotaForcedRefusals(records, targetMs, bound);
  const falseRefusals = Math.min(refusedWhoseTwinCompleted, Math.max(0, refused - forcedByBound));
  const completedInReplay = replay.filter((record) => record.outcome === 'completed').length;
  return {
    ...admission,
    falseRefusals,
    refusedWhoseTwinCompleted,
    ...(bound !== undefined ? { forcedByBound } : {}),
    falseRefusalRate: records.length === 0 ? 0 : falseRefusals / records.length,
    replay: {
      completed: completedInReplay,
      completedWithinDeadline: replay.filter(
        (record) => record.outcome === 'completed' && (record.completionMs ?? Infinity) <= targetMs,
      ).length,
      failed: replay.length - completedInReplay,
    },
  };
}

/**
 * Chats that no scheduler could have completed within their deadlines: the arrivals beyond
 * mu × (arrival span + deadline) / k (0 without a deadline or without a measured k).
 */
export function quotaForcedRefusals(
  records: ChatRecord[],
  deadlineMs: number,
  bound: { callsPerS: number; callsPerChat: number },
): number {
  if (!Number.isFinite(deadlineMs) || records.length === 0 || !(bound.callsPerChat > 0)) return 0;
  let first = Infinity;
  let last = -Infinity;
  for (const record of records) {
    first = Math.min(first, record.sentAt);
    last = Math.max(last, record.sentAt);
  }
  const servable = Math.ceil((bound.callsPerS * (last - first + deadlineMs)) / 1000 / bound.callsPerChat);
  return Math.max(0, records.length - servable);
}
