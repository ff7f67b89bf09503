import type { CachedResponse, ResponseCache } from '../../../api/llm/cache/response-cache';

export interface CacheUnderTest {
  cache: ResponseCache;
  /** Makes every entry written so far older than its TTL (the LRU moves its clock; Redis expires keys). */
  expireAll(): Promise<void>;
}

export const answer = (text: string): CachedResponse => ({
  text,
  toolCalls: [],
  usage: { promptTokens: 12, completionTokens: 34 },
  finishReason: 'stop',
});

/** The ResponseCache port's behaviour, run against every adapter (in-process and Redis). */
export function describeResponseCacheBehaviour(setup: {
  create(options: { maxEntryBytes: number }): Promise<CacheUnderTest>;
  destroy(subject: CacheUnderTest): Promise<void>;
}): void {
  let subject: CacheUnderTest;
  beforeEach(async () => {
    subject = await setup.create({ maxEntryBytes: 4096 });
  });
  afterEach(() => setup.destroy(subject));

  test('a stored answer comes back whole, tool calls included', async () => {
    const value: CachedResponse = {
      text: '',
      toolCalls: [{ id: 'call_1', name: 'search_web', arguments: '{"query":"ark limits"}' }],
      usage: { promptTokens: 5, completionTokens: 7 },
      finishReason: 'tool_calls',
    };
    await subject.cache.set('k-tools', value, 60);
    expect(await subject.cache.get('k-tools')).toEqual(value);
  });

  test('an unknown key is a miss; keys are independent; a second set replaces the first', async () => {
    expect(await subject.cache.get('nothing')).toBeUndefined();
    await subject.cache.set('a', answer('alpha'), 60);
    await subject.cache.set('b', answer('beta'), 60);
    await subject.cache.set('a', answer('alpha 2'), 60);
    expect((await subject.cache.get('a'))?.text).toBe('alpha 2');
    expect((await subject.cache.get('b'))?.text).toBe('beta');
  });

  test('non-ASCII text round-trips exactly', async () => {
    await subject.cache.set('zh', answer('火山方舟的限流规则：RPM 与 TPM。'), 60);
    expect((await subject.cache.get('zh'))?.text).toBe('火山方舟的限流规则：RPM 与 TPM。');
  });

  test('an answer past its TTL is gone', async () => {
    await subject.cache.set('short', answer('soon gone'), 5);
    await subject.expireAll();
    expect(await subject.cache.get('short')).toBeUndefined();
  });

  test('a value above the entry bound, or a TTL of 0, is not stored', async () => {
    await subject.cache.set('huge', answer('x'.repeat(10_000)), 60);
    await subject.cache.set('no-ttl', answer('never'), 0);
    expect(await subject.cache.get('huge')).toBeUndefined();
    expect(await subject.cache.get('no-ttl')).toBeUndefined();
  });
}
