import http from 'node:http';
import type {
  CompletionOptions,
  CompletionRequest,
  CompletionResult,
  Provider,
} from '../../api/llm/provider';
import { capturingLogger } from '../helpers/capturing-logger';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe } from '../helpers/test-server';

/** A provider with a very long answer: 2,000 deltas of 4 KB (8 MB), yielding as a network would. */
class FloodProvider implements Provider {
  readonly name = 'flood';
  async complete(_request: CompletionRequest, options: CompletionOptions): Promise<CompletionResult> {
    const piece = 'word '.repeat(800);
    for (let index = 0; index < 2000; index++) {
      if (options.signal.aborted) throw options.signal.reason;
      options.onDelta?.(piece);
      if (index % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    return {
      text: 'done',
      toolCalls: [],
      usage: { promptTokens: 1, completionTokens: 1 },
      finishReason: 'stop',
    };
  }
}

describe('a slow reader', () => {
  test('is ended once its backlog passes SSE_MAX_BUFFERED_BYTES; the run and its other listener are unaffected', async () => {
    const captured = capturingLogger('info');
    const troupe = await startTestTroupe(
      {
        SSE_MAX_BUFFERED_BYTES: '262144',
        SSE_SLOW_READER_MS: '60000',
        RUN_LOG_MAX_EVENTS: '20',
        SSE_RESUME_GRACE_MS: '60000',
      },
      { provider: new FloodProvider(), logger: captured.logger },
    );
    try {
      // The slow reader: reads the first chunk (to learn the run id), then stops reading.
      const slow = await new Promise<{ runId: string; response: http.IncomingMessage; text: () => string }>(
        (resolve, reject) => {
          const request = http.request(`${troupe.url}/api/chat`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
          });
          request.on('error', reject);
          request.on('response', (response) => {
            let text = '';
            response.once('data', (chunk: Buffer) => {
              text += chunk.toString();
              response.pause();
              const runId = /"runId":"([^"]+)"/.exec(text)?.[1];
              if (runId) resolve({ runId, response, text: () => text });
              else reject(new Error(`no run id in ${text}`));
            });
          });
          request.end(JSON.stringify({ message: 'flood me', mode: 'single' }));
        },
      );
      // A second, healthy listener on the same run.
      const healthy = await openSse(`${troupe.url}/api/runs/${slow.runId}/events`);
      await healthy.ended;
      expect(healthy.events.at(-1)?.event).toBe('done');
      expect(troupe.runs.get(slow.runId)?.isFinished).toBe(true);
      // The server let go of the slow stream (its socket was ended, then destroyed) without waiting for it.
      await waitUntil(async () => {
        const status = (await fetch(`${troupe.url}/api/sse/status`).then((response) => response.json())) as {
          openStreams: number;
        };
        return status.openStreams === 0;
      });
      expect(captured.raw.some((line) => line.includes('ending a stream whose reader is too slow'))).toBe(
        true,
      );
      // Reading on, the slow client gets what the kernel still held, then the end: never `done`.
      let rest = '';
      slow.response.on('data', (chunk: Buffer) => (rest += chunk.toString()));
      slow.response.resume();
      await new Promise((resolve) => {
        slow.response.once('end', resolve);
        slow.response.once('close', resolve);
        slow.response.socket?.once('close', resolve);
      });
      expect(slow.text().length + rest.length).toBeLessThan(8_000_000);
      expect(rest).not.toContain('event: done');
    } finally {
      await troupe.stop();
    }
  });
});

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
