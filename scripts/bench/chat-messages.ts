/**
 * What the benchmark's users type. The simulated model decides its work from the text
 * (api/llm/sim/sim-model.ts), so the mix fixes the calls a chat costs:
 * - long (8 words or more, no search words): Host, Planner, Critic approves, Reporter = 4 calls;
 * - short (under 8 words): the Critic asks for one revision = 6 calls;
 * - search (asks for recent facts): the Planner calls search_web once = 5 calls;
 * - search_review (a search that asks for the plan to be "reviewed twice"): the Planner searches,
 *   the Critic asks for one revision, the revising Planner searches again = 8 calls (not in the
 *   default mix; a plain short search is approved at once, its sources step making 3 steps).
 * With AGENT_PARALLEL=on the Reporter drafts while the Critic reviews, and a revision withdraws that
 * draft: one call more for each revision (short 7, search_review 9), when the draft reached the provider.
 */

export type MessageKind = 'long' | 'short' | 'search' | 'search_review';

/** Share of each kind in a mix (shares sum to 1). */
export type MessageMix = Readonly<Record<MessageKind, number>>;

/** Share of each kind in the default mix. */
export const MESSAGE_MIX: MessageMix = { long: 0.7, short: 0.15, search: 0.15, search_review: 0 };

/** Provider calls a chat of each kind costs with CRITIC_MAX_ROUNDS=1, TOOL_MAX_ROUNDS≥1 and AGENT_PARALLEL=off. */
export const CALLS_PER_KIND: Readonly<Record<MessageKind, number>> = {
  long: 4,
  short: 6,
  search: 5,
  search_review: 8,
};

/** Calls a chat of `kind` costs with AGENT_PARALLEL=on: one withdrawn Reporter draft per revision. */
export function callsPerKind(kind: MessageKind, agentParallel = false): number {
  const revises = kind === 'short' || kind === 'search_review';
  return CALLS_PER_KIND[kind] + (agentParallel && revises ? 1 : 0);
}

/** The mix's expected calls per chat (4.45 with the default mix). */
export function expectedCallsPerChat(mix: MessageMix = MESSAGE_MIX, agentParallel = false): number {
  return (Object.keys(mix) as MessageKind[]).reduce(
    (sum, kind) => sum + mix[kind] * callsPerKind(kind, agentParallel),
    0,
  );
}

const TOPICS = [
  'a rolling rate limiter for an API gateway',
  'database connection pooling in a Node service',
  'caching search results without serving stale answers',
  'a circuit breaker in front of a flaky dependency',
  'streaming responses to thousands of browser clients',
  'priority queues that do not starve low priority work',
  'estimating wait times for people in a virtual queue',
  'graceful shutdown of an HTTP server under load',
  'choosing timeouts for calls to a language model',
  'sharing limits between several server instances',
  'measuring tail latency in a load test',
  'backing off politely after an HTTP 429 answer',
];

// Every long message has at least 8 words and none of the words that make the model search
// (search, latest, news, recent, today, current…), so it costs exactly 4 calls.
const LONG_TEMPLATES = [
  (topic: string) => `Please explain how to design ${topic} and what the main trade-offs are`,
  (topic: string) => `Give me a step by step plan for building ${topic} in production`,
  (topic: string) => `What mistakes do teams usually make with ${topic} and how can they be avoided`,
  (topic: string) => `Compare two different approaches to ${topic} for a small engineering team`,
];

const SHORT_MESSAGES = [
  'Explain backpressure',
  'What is a token bucket?',
  'Why cache answers?',
  'Define tail latency',
  'Is SSE better than polling?',
];

const SEARCH_TEMPLATES = [
  (topic: string) => `Search the web for ${topic} and summarise what you find`,
  (topic: string) => `What is the latest thinking on ${topic}?`,
];

/** Picks a message kind by the mix for a uniform draw `u` in [0, 1). */
export function pickKind(u: number, mix: MessageMix = MESSAGE_MIX): MessageKind {
  let cumulative = 0;
  for (const kind of Object.keys(mix) as MessageKind[]) {
    cumulative += mix[kind];
    if (u < cumulative) return kind;
  }
  return 'long';
}

/** A message of `kind`; `u` (uniform in [0, 1)) chooses the topic and wording. */
export function composeMessage(kind: MessageKind, u: number): string {
  const index = Math.floor(u * 1_000_000);
  const topic = TOPICS[index % TOPICS.length];
  if (kind === 'short') return SHORT_MESSAGES[index % SHORT_MESSAGES.length];
  if (kind === 'search' || kind === 'search_review') {
    const text = SEARCH_TEMPLATES[Math.floor(index / TOPICS.length) % SEARCH_TEMPLATES.length](topic);
    return kind === 'search' ? text : `${text} Have the plan reviewed twice.`;
  }
  return LONG_TEMPLATES[Math.floor(index / TOPICS.length) % LONG_TEMPLATES.length](topic);
}
