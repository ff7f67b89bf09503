/**
 * The messages a follower on another instance sends a run's owner on its channel
 * `<prefix>run-attendance:<ownerId>`: `attach <runId> <followerId>` when it starts and every beat
 * while it follows, `detach …` when it leaves. Space-separated: ids never contain spaces.
 */
export type AttendanceKind = 'attach' | 'detach';

export interface AttendanceMessage {
  kind: AttendanceKind;
  runId: string;
  followerId: string;
}

export function attendanceChannel(keyPrefix: string, ownerId: string): string {
  return `${keyPrefix}run-attendance:${ownerId}`;
}

export function encodeAttendance(kind: AttendanceKind, runId: string, followerId: string): string {
  return `${kind} ${runId} ${followerId}`;
}

export function decodeAttendance(text: string): AttendanceMessage | undefined {
  const [kind, runId, followerId] = text.split(' ');
  if ((kind !== 'attach' && kind !== 'detach') || !runId || !followerId) return undefined;
  return { kind, runId, followerId };
}
