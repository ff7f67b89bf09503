/**
 * Artillery processor for load-test.yml. Two jobs:
 * - Every virtual user of the quota scenario asks its own question (`composeQuestion`), so the LLM
 *   response cache cannot answer it and each chat costs real provider calls; the cache scenario asks
 *   one fixed question, to show what the cache saves.
 * - Artillery only sees an HTTP 200 for a stream, whether it ended with `done` or with an `error`
 *   event, so `countChatOutcome` reads the buffered SSE body and counts how each chat really ended
 *   (`done`, or an `error` event with its code), in total and per scenario. Artillery's
 *   `http.response_time` is the time to the response headers — for a stream, a few ms — so the time
 *   to the end of a completed chat is its own metric, `troupe.chat.completed_ms`.
 * Artillery bundles this file itself (esbuild), so it imports nothing.
 */

interface ArtilleryResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
}

interface ArtilleryEvents {
  emit(type: 'counter' | 'histogram', name: string, value: number): void;
}

interface ArtilleryContext {
  vars: Record<string, unknown>;
}

const STARTED_AT = 'troupeChatStartedAt';
/** The scenario's short name in the per-scenario counters (`troupe.scenario.<tag>.completed`). */
const SCENARIO_TAG = 'scenarioTag';

const TOPICS = [
  'a rolling rate limiter for an API gateway',
  'a cache for an LLM-backed chat service',
  'a team offsite for forty people',
  'the migration of a monolith to services',
  'an on-call rota for a small team',
  'a priority queue with fair sharing between users',
  'a backup plan for a SQLite database',
  'a product launch in three markets',
  'a reading list on distributed systems',
  'the onboarding of five new engineers',
  'a budget for a community conference',
  'a load test for a streaming API',
];
const ASKS = [
  'How should we plan',
  'What are the main risks of',
  'Compare two ways to build',
  'Write a one-page proposal for',
  'What would you measure first in',
  'Give a step-by-step checklist for',
];

/**
 * A question no earlier user asked: a topic, an ask and a number drawn for this user, plus a
 * random tag (sessions × topics × asks alone would repeat in a long run).
 */
export function variedQuestion(random: () => number = Math.random): string {
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
  const people = 2 + Math.floor(random() * 500);
  const tag = Math.floor(random() * 36 ** 6).toString(36);
  return `${pick(ASKS)} ${pick(TOPICS)}, for ${people} people? (ref ${tag})`;
}

/** Flow step of the quota scenario: this virtual user's own question, as `{{ question }}`. */
export function composeQuestion(context: ArtilleryContext, _events: unknown, next: () => void): void {
  context.vars[SCENARIO_TAG] = 'quota';
  context.vars.question = variedQuestion();
  next();
}

/** Flow step of the cache scenario, which asks the one question written in load-test.yml. */
export function markCacheScenario(context: ArtilleryContext, _events: unknown, next: () => void): void {
  context.vars[SCENARIO_TAG] = 'cache';
  next();
}

/** beforeRequest: when this virtual user's chat was sent (each user sends one chat). */
export function markChatStart(
  _request: unknown,
  context: ArtilleryContext,
  _events: unknown,
  next: () => void,
): void {
  context.vars[STARTED_AT] = Date.now();
  next();
}

/** The terminal event of an SSE body: `done`, `error` with its code, or nothing. */
export function terminalEvent(
  body: string,
): { event: 'done' } | { event: 'error'; code: string } | undefined {
  let last: { event: 'done' } | { event: 'error'; code: string } | undefined;
  for (const block of body.split(/\r?\n\r?\n/)) {
    const name = /^event: *(.+)$/m.exec(block)?.[1]?.trim();
    if (name === 'done') last = { event: 'done' };
    else if (name === 'error') {
      const data = /^data: *(.*)$/m.exec(block)?.[1] ?? '';
      let code = 'unknown';
      try {
        code = String((JSON.parse(data) as { code?: unknown }).code ?? 'unknown');
      } catch {
        // An unreadable error event still ends the stream as an error.
      }
      last = { event: 'error', code };
    }
  }
  return last;
}

export function countChatOutcome(
  _request: unknown,
  response: ArtilleryResponse,
  context: ArtilleryContext,
  events: ArtilleryEvents,
  next: () => void,
): void {
  // afterResponse runs once the body is read, i.e. when the stream has ended.
  const startedAt = context.vars?.[STARTED_AT];
  const tag = context.vars?.[SCENARIO_TAG];
  const outcome = (name: 'completed' | 'refused' | 'failed') => {
    if (typeof tag === 'string' && tag) events.emit('counter', `troupe.scenario.${tag}.${name}`, 1);
  };
  if (response.statusCode === 503) {
    events.emit('counter', 'troupe.chat.refused', 1);
    if (response.headers['retry-after'] !== undefined)
      events.emit('counter', 'troupe.chat.refused_with_retry_after', 1);
    outcome('refused');
  } else if (response.statusCode === 200) {
    const ending = terminalEvent(
      typeof response.body === 'string' ? response.body : String(response.body ?? ''),
    );
    if (!ending) events.emit('counter', 'troupe.chat.incomplete', 1);
    else if (ending.event === 'done') {
      events.emit('counter', 'troupe.chat.completed', 1);
      if (typeof startedAt === 'number')
        events.emit('histogram', 'troupe.chat.completed_ms', Date.now() - startedAt);
    } else events.emit('counter', `troupe.chat.error.${ending.code}`, 1);
    // An `overloaded` event: the chat waited in line and was refused before any provider call.
    outcome(
      ending?.event === 'done'
        ? 'completed'
        : ending?.event === 'error' && ending.code === 'overloaded'
          ? 'refused'
          : 'failed',
    );
  } else {
    outcome('failed');
  }
  next();
}
