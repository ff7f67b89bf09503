import type { MessageKind } from './chat-messages';

/**
 * The `cache` benchmark's question set and its popularity: 200 first questions (25 topics × 8
 * wordings: 7 that cost 4 calls, 1 that searches first and costs 5), ranked 1…200 in this order,
 * rank k asked with probability (1/k^s) / H(200, s), s = 1.0 — the classic Zipf law of query
 * popularity (a few questions asked by many people, a long tail asked once).
 */

export const ZIPF_QUESTION_COUNT = 200;
export const ZIPF_EXPONENT = 1.0;

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
  'retrying failed payments without charging twice',
  'paginating a large table for a mobile app',
  'keeping secrets out of application logs',
  'rolling out a feature flag to a small share of users',
  'choosing between a queue and a stream for events',
  'sizing a thread pool for mixed workloads',
  'indexing a document store for text search',
  'migrating a schema without downtime',
  'deduplicating webhook deliveries',
  'scheduling periodic jobs across a cluster',
  'monitoring memory growth in a long running process',
  'compressing API responses for slow networks',
  'testing code that depends on the current time',
];

const TEMPLATES: Array<{ kind: MessageKind; write: (topic: string) => string }> = [
  {
    kind: 'long',
    write: (topic) => `Please explain how to design ${topic} and what the main trade-offs are`,
  },
  { kind: 'long', write: (topic) => `Give me a step by step plan for building ${topic} in production` },
  {
    kind: 'long',
    write: (topic) => `What mistakes do teams usually make with ${topic} and how to avoid them`,
  },
  {
    kind: 'long',
    write: (topic) => `Compare two different approaches to ${topic} for a small engineering team`,
  },
  { kind: 'long', write: (topic) => `How would you explain ${topic} to a new engineer on the team` },
  { kind: 'long', write: (topic) => `Which metrics tell me that ${topic} is working as intended` },
  { kind: 'long', write: (topic) => `Write a short checklist for reviewing ${topic} before a release` },
  { kind: 'search', write: (topic) => `Search the web for ${topic} and summarise what you find` },
];

export interface Question {
  rank: number;
  kind: MessageKind;
  text: string;
}

/** The 200 questions, most popular first: wordings vary fastest so every topic has popular forms. */
export const QUESTIONS: readonly Question[] = TOPICS.flatMap((topic, topicIndex) =>
  TEMPLATES.map((template, templateIndex) => ({ topic, topicIndex, template, templateIndex })),
)
  .sort((a, b) => a.templateIndex - b.templateIndex || a.topicIndex - b.topicIndex)
  .map(({ topic, template }, index) => ({
    rank: index + 1,
    kind: template.kind,
    text: template.write(topic),
  }));

/** A sampler of ranks (0-based) by Zipf's law over `count` items, driven by a uniform source. */
export function zipfSampler(count: number, exponent: number, random: () => number): () => number {
  const cumulative: number[] = [];
  let total = 0;
  for (let rank = 1; rank <= count; rank++) {
    total += 1 / rank ** exponent;
    cumulative.push(total);
  }
  return () => {
    const target = random() * total;
    let low = 0;
    let high = count - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (cumulative[middle] < target) low = middle + 1;
      else high = middle;
    }
    return low;
  };
}

/** Expected distinct items among `draws` Zipf draws: the hit rate a perfect cache could reach is 1 − this / draws. */
export function expectedDistinct(count: number, exponent: number, draws: number): number {
  let norm = 0;
  for (let rank = 1; rank <= count; rank++) norm += 1 / rank ** exponent;
  let distinct = 0;
  for (let rank = 1; rank <= count; rank++) distinct += 1 - (1 - 1 / rank ** exponent / norm) ** draws;
  return distinct;
}
