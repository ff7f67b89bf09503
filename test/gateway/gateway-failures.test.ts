import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import {
  ProviderError,
  type CompletionOptions,
  type CompletionResult,
  type CompletionRequest,
  type Provider,
} from '../../api/llm/provider';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { parseDataBlocks } from './sse-chunks';

/** Streams two words, then fails as a provider whose connection dropped mid-answer. */
class FailsMidStream implements Provider {
  readonly name = 'sim';
  async complete(_request: CompletionRequest, options: CompletionOptions): Promise<CompletionResult> {
    options.onDelta?.('Hello ');
    options.onDelta?.('there');
    await new Promise((resolve) => setTimeout(resolve, 10));
    throw new ProviderError('server', 'upstream connection reset');
  }
}

/** Answers only when released: a call that stays in flight for as long as a test needs. */
class HeldProvider implements Provider {
  readonly name = 'sim';
  private releases: Array<() => void> = [];
  async complete(_request: CompletionRequest, options: CompletionOptions) {
    await new Promise<void>((resolve, reject) => {
      this.releases.push(resolve);
      options.signal.addEventListener('abort', () => reject(options.signal.reason), { once: true });
    });
    options.onDelta?.('done');
    return {
      text: 'done',
      toolCalls: [],
      usage: { promptTokens: 3, completionTokens: 1 },
      finishReason: 'stop' as const,
    };
  }
  get held(): number {
    return this.releases.length;
  }
  releaseAll(): void {
    for (const release of this.releases.splice(0)) release();
  }
}

async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 10_000) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('a provider failure after the first chunk', () => {
  let troupe: TestTroupe;
  beforeAll(async () => {
    troupe = await startTestTroupe({ LLM_CACHE: 'off' }, { provider: new FailsMidStream() });
  });
  afterAll(() => troupe.stop());

  test('ends the stream with an error object, never [DONE]', async () => {
    const response = await fetch(`${troupe.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sim', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.status).toBe(200);
    const blocks = parseDataBlocks(await response.text());
    expect(blocks).not.toContain('[DONE]');
    expect(blocks.at(-1)).toEqual({
      error: { message: expect.any(String), type: 'server_error', code: 'llm_unavailable', param: null },
    });
  });

  test('not streamed, the same failure is an HTTP error in OpenAI shape', async () => {
    const response = await request(troupe.url)
      .post('/v1/chat/completions')
      .send({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] });
    expect(response.status).toBe(503);
    expect(response.body.error).toMatchObject({ code: 'llm_unavailable', type: 'server_error' });
  });
});

describe('callers Troupe cannot serve in time get 429 + Retry-After', () => {
  let troupe: TestTroupe;
  let provider: HeldProvider;
  let keysFile: string;
  beforeAll(async () => {
    keysFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-keys-')), 'keys.yaml');
    fs.writeFileSync(
      keysFile,
      [
        'keys:',
        '  - key: key-one-at-a-time',
        '    caller: notebook',
        '    limits: { concurrency: 1 }',
        '  - key: key-two-a-minute',
        '    caller: cron',
        '    class: batch',
        '    limits: { rpm: 2 }',
        '  - key: key-batch-free',
        '    caller: etl',
        '    class: batch',
      ].join('\n'),
    );
    provider = new HeldProvider();
    troupe = await startTestTroupe(
      { API_KEYS_FILE: keysFile, LLM_CACHE: 'off', LLM_MAX_CONCURRENT: '1', GATEWAY_MAX_WAIT_MS: '1000' },
      { provider },
    );
  });
  afterAll(async () => {
    provider.releaseAll();
    await troupe.stop();
    fs.rmSync(path.dirname(keysFile), { recursive: true, force: true });
  });

  const ask = (key: string) =>
    request(troupe.url)
      .post('/v1/chat/completions')
      .set('Authorization', `Bearer ${key}`)
      .send({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] });

  test('a key at its own concurrency limit is refused at once, without touching the queue', async () => {
    const first = ask('key-one-at-a-time').then((response) => response);
    await until(() => provider.held === 1);
    const second = await ask('key-one-at-a-time');
    expect(second.status).toBe(429);
    expect(second.headers['retry-after']).toBe('1');
    expect(second.body.error).toMatchObject({ code: 'user_rate_limited', type: 'rate_limit_error' });
    provider.releaseAll();
    expect((await first).status).toBe(200);
  });

  test('a call that waits past GATEWAY_MAX_WAIT_MS for a slot gets 429, not 503', async () => {
    const holder = ask('key-one-at-a-time').then((response) => response);
    await until(() => provider.held === 1);
    const waiting = await ask('key-batch-free');
    expect(waiting.status).toBe(429);
    expect(Number(waiting.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(waiting.body.error).toMatchObject({ code: 'queue_timeout', type: 'rate_limit_error' });
    provider.releaseAll();
    expect((await holder).status).toBe(200);
  });

  test('a client that leaves while its call is queued takes the call out of the queue', async () => {
    const holder = ask('key-one-at-a-time').then((response) => response);
    await until(() => provider.held === 1);
    const controller = new AbortController();
    const queued = fetch(`${troupe.url}/v1/chat/completions`, {
      method: 'POST',
      signal: controller.signal,
      headers: { 'content-type': 'application/json', Authorization: 'Bearer key-batch-free' },
      body: JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] }),
    }).catch((error: unknown) => error);
    await until(() => troupe.scheduler.status().queueLength === 1);
    const cancelledBefore = troupe.scheduler.status().totalCancelled;
    controller.abort();
    await queued;
    await until(() => troupe.scheduler.status().queueLength === 0);
    // Cancelled by the client, not timed out: it left the queue when the client did.
    await until(() => troupe.scheduler.status().totalCancelled === cancelledBefore + 1);
    expect(provider.held).toBe(1);
    provider.releaseAll();
    expect((await holder).status).toBe(200);
  });

  test('a key past its rpm is told when its minute frees up', async () => {
    for (let index = 0; index < 2; index++) {
      const call = ask('key-two-a-minute').then((response) => response);
      await until(() => provider.held === 1);
      provider.releaseAll();
      expect((await call).status).toBe(200);
    }
    const third = await ask('key-two-a-minute');
    expect(third.status).toBe(429);
    expect(Number(third.headers['retry-after'])).toBeGreaterThan(50);
    expect(third.body.error.code).toBe('user_rate_limited');
  });
});
