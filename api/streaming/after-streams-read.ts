import type { Clock } from '../clock';

/**
 * How long a run whose streams were paused waits for their news before it starts: a client's end
 * of file takes a poll to read and a turn or two more to close the stream (sse-capacity release:
 * runs of clients already gone were started and made a call each, ~30–70 more wasted calls).
 */
const START_DELAY_MS = 20;
/**
 * Event-loop turns a run whose streams were paused also waits for, after START_DELAY_MS: its end of
 * file is read in a poll after the socket resumes, and the stream closes in that turn's close phase.
 * At the release of 10,000 streams a turn took 80–200 ms, so the 20 ms timer fired in the next
 * turn's timers phase, before that poll, and ~20 runs of clients already gone were started every
 * other turn (instrumented sse-capacity run). Two check phases later both have happened.
 */
const START_DELAY_TURNS = 2;

/**
 * Calls `start` once the streams of a run that gets its slot while they were paused (see
 * WaitingReads) have been read: START_DELAY_MS on `clock`, then START_DELAY_TURNS check phases.
 * A client that already left is noticed in between, and its run's calls held, before it starts.
 */
export function afterStreamsRead(clock: Clock, start: () => void): void {
  clock.setTimeout(() => afterTurns(clock, START_DELAY_TURNS, start), START_DELAY_MS);
}

function afterTurns(clock: Clock, turns: number, start: () => void): void {
  if (turns === 0) start();
  else clock.defer(() => afterTurns(clock, turns - 1, start));
}
