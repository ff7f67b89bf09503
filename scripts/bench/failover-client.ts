import {
  now,
  resumeChat,
  runChat,
  type ChatRecord,
  type ChatRunOptions,
  type ChatSpec,
  type ChatTarget,
} from './chat-client';

/** Resumes of one chat, at most, before it counts as failed (each lands on an instance nginx picks). */
const MAX_RESUMES = 3;

/**
 * A chat as a cluster's client runs it: when the stream breaks (its instance was killed), resume
 * with Last-Event-ID through the balancer — another instance serves the rest from the shared run
 * log; when that instance reports the owner gone (`shutting_down`: the chat can never finish),
 * send the message again, once, as a user would. Times stay measured from the first request.
 */
export async function runChatWithFailover(
  target: ChatTarget,
  spec: ChatSpec,
  options: ChatRunOptions,
): Promise<ChatRecord> {
  let record = await runChat(target, spec, options);
  for (let resumes = 0; resumes < MAX_RESUMES && broke(record); resumes++) {
    record.failover = 'resumed';
    record = await resumeChat(target, spec, record, options);
  }
  if (record.failover !== 'resumed' || record.outcome !== 'failed') return record;
  if (record.code !== 'shutting_down' && !broke(record)) return record;
  const remainingMs = record.sentAt + options.timeoutMs - now();
  if (remainingMs <= 0) return record;
  const again = await runChat(target, spec, { ...options, timeoutMs: remainingMs });
  const offset = again.sentAt - record.sentAt;
  const shift = (value: number | undefined) => (value === undefined ? undefined : value + offset);
  return {
    ...again,
    sentAt: record.sentAt,
    // A refusal's latency is the server's answer to that request, not the failover before it.
    headersMs: again.outcome === 'refused' ? again.headersMs : record.headersMs,
    firstEventMs: record.firstEventMs,
    firstTokenMs: record.firstTokenMs ?? shift(again.firstTokenMs),
    completionMs: shift(again.completionMs),
    failover: 'resubmitted',
  };
}

function broke(record: ChatRecord): boolean {
  return (
    record.outcome === 'failed' &&
    record.runId !== undefined &&
    (record.code === 'incomplete_stream' || record.code === 'network')
  );
}
