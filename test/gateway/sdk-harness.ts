import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/**
 * Two real Troupe servers for the SDK tests (embedded simulated provider): `fast` answers at
 * once; `slow` streams slowly, so a call stays in flight while a test makes a second one. Its
 * keys file has `sk-one-at-a-time`, limited to one request in flight: the second call of that
 * key gets 429 + Retry-After every time, deterministically.
 */
export interface SdkServers {
  fast: TestTroupe;
  slow: TestTroupe;
  stop(): Promise<void>;
}

export const API_KEY = 'sk-sdk-tests';
export const LIMITED_KEY = 'sk-one-at-a-time';

export async function startSdkServers(): Promise<SdkServers> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-sdk-'));
  const keysFile = path.join(dir, 'keys.yaml');
  fs.writeFileSync(
    keysFile,
    [
      'keys:',
      `  - { key: ${API_KEY}, caller: sdk-tests }`,
      `  - { key: ${LIMITED_KEY}, caller: notebook, limits: { concurrency: 1 } }`,
    ].join('\n'),
  );
  const fast = await startTestTroupe({ API_KEYS_FILE: keysFile });
  const slow = await startTestTroupe({
    API_KEYS_FILE: keysFile,
    LLM_CACHE: 'off',
    SIM_LATENCY_MS: '20',
    SIM_TOKENS_PER_S: '10',
  });
  return {
    fast,
    slow,
    async stop() {
      await Promise.all([fast.stop(), slow.stop()]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Holds LIMITED_KEY's one slot: a slow streamed call that runs until `release()` hangs it up
 * (which aborts it on the server and frees the slot).
 */
export async function holdLimitedKey(server: TestTroupe): Promise<{ release(): void }> {
  const controller = new AbortController();
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    signal: controller.signal,
    headers: { 'content-type': 'application/json', Authorization: `Bearer ${LIMITED_KEY}` },
    body: JSON.stringify({
      model: 'sim',
      stream: true,
      messages: [{ role: 'user', content: 'Write a long story about a lighthouse keeper' }],
    }),
  });
  const reader = response.body!.getReader();
  // The first chunk arrived: the call is in flight and holds the key's slot.
  await reader.read();
  return { release: () => controller.abort() };
}

/**
 * A fetch that records each response's status and time, and calls `onRateLimited` at the first
 * 429 (the test frees the slot there, so the SDK's retry after Retry-After finds room).
 */
export function recordingFetch(onRateLimited: () => void) {
  const responses: Array<{ status: number; at: number; retryAfter: string | null }> = [];
  const wrapped = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const response = await fetch(input, init);
    responses.push({
      status: response.status,
      at: Date.now(),
      retryAfter: response.headers.get('retry-after'),
    });
    if (response.status === 429 && responses.filter((entry) => entry.status === 429).length === 1)
      onRateLimited();
    return response;
  };
  return { fetch: wrapped as typeof fetch, responses };
}

export const SEARCH_TOOL_PARAMETERS: {
  type: 'object';
  properties: Record<string, { type: 'string'; description: string }>;
  required: string[];
  additionalProperties: false;
} = {
  type: 'object',
  properties: { query: { type: 'string', description: 'What to search for' } },
  required: ['query'],
  additionalProperties: false,
};

/** What the test's own search tool returns: the simulated model quotes the titles. */
export const SEARCH_RESULT = {
  results: [{ title: 'Solar Weekly', snippet: 'Panels got cheaper this year' }],
};
