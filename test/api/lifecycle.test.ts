import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe } from '../helpers/test-server';
import {
  ProviderError,
  type CompletionOptions,
  type CompletionRequest,
  type Provider,
} from '../../api/llm/provider';

/** A provider that streams a little, then fails: the run must end with an `error` event. */
class FailingProvider implements Provider {
  readonly name = 'failing';
  constructor(private readonly failure: () => Error) {}
  async complete(_request: CompletionRequest, options: CompletionOptions): Promise<never> {
    options.onDelta?.('partial ');
    throw this.failure();
  }
}

describe('runs that fail or outlive their client', () => {
  test('a provider failure mid-stream ends the stream with an error event, never silently', async () => {
    const troupe = await startTestTroupe(
      {},
      { provider: new FailingProvider(() => new ProviderError('server', 'boom', { status: 500 })) },
    );
    try {
      const stream = await openSse(`${troupe.url}/api/chat`, { body: { message: 'hello' } });
      await stream.ended;
      const last = stream.events.at(-1)!;
      expect(last.event).toBe('error');
      expect(last.data.code).toEqual(expect.any(String));
      expect(last.data.message).toEqual(expect.any(String));
      expect(stream.events.some((event) => event.event === 'done')).toBe(false);
      // The process is still serving.
      await request(troupe.url).get('/api/conversations/unknown').expect(404);
    } finally {
      await troupe.stop();
    }
  });

  test('a JSON chat whose run fails answers with the JSON error shape', async () => {
    const troupe = await startTestTroupe(
      {},
      { provider: new FailingProvider(() => new Error('unexpected')) },
    );
    try {
      const response = await request(troupe.url)
        .post('/api/chat')
        .set('Accept', 'application/json')
        .send({ message: 'hello', mode: 'single' });
      expect(response.status).toBeGreaterThanOrEqual(500);
      expect(response.body.error).toEqual({ code: expect.any(String), message: expect.any(String) });
    } finally {
      await troupe.stop();
    }
  });

  test('heartbeat comments arrive on a running stream at SSE_HEARTBEAT_MS', async () => {
    const troupe = await startTestTroupe({ SSE_HEARTBEAT_MS: '100', SIM_LATENCY_MS: '700' });
    try {
      const stream = await openSse(`${troupe.url}/api/chat`, { body: { message: 'hello', mode: 'single' } });
      await stream.ended;
      expect(stream.comments.filter((comment) => comment === 'ping').length).toBeGreaterThanOrEqual(2);
      expect(stream.events.at(-1)?.event).toBe('done');
    } finally {
      await troupe.stop();
    }
  });

  test('a run longer than RUN_LOG_MAX_EVENTS still answers in full, and its replay starts with run', async () => {
    const troupe = await startTestTroupe({ RUN_LOG_MAX_EVENTS: '50' });
    try {
      const response = await request(troupe.url)
        .post('/api/chat')
        .set('Accept', 'application/json')
        .send({ message: 'Compare three ways to cache HTTP responses in a Node.js service' })
        .expect(200);
      expect(response.body.agents.map((agent: { agent: string }) => agent.agent)).toEqual(
        expect.arrayContaining(['host', 'planner', 'critic', 'reporter']),
      );
      expect(response.body.agents.at(-1).text).toBe(response.body.answer);

      const stream = await openSse(`${troupe.url}/api/chat`, {
        body: { message: 'Explain backpressure in streams' },
      });
      await stream.ended;
      const runId = stream.events[0].data.runId;
      const replay = await openSse(`${troupe.url}/api/runs/${runId}/events`);
      await replay.ended;
      expect(replay.events[0].event).toBe('run');
      expect(replay.events.length).toBeLessThanOrEqual(50);
      expect(replay.events.at(-1)?.event).toBe('done');
    } finally {
      await troupe.stop();
    }
  });

  test('a conversation survives a restart of the server on the same data directory', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-restart-'));
    try {
      const first = await startTestTroupe({ DATA_DIR: dataDir });
      const chat = await request(first.url)
        .post('/api/chat')
        .set('Accept', 'application/json')
        .send({ message: 'Remember the word persimmon', mode: 'single' })
        .expect(200);
      await first.stop();

      const second = await startTestTroupe({ DATA_DIR: dataDir });
      try {
        const conversation = await request(second.url)
          .get(`/api/conversations/${chat.body.conversationId}`)
          .expect(200);
        expect(conversation.body.messages[0].content).toBe('Remember the word persimmon');
        expect(conversation.body.messages.at(-1).content).toBe(chat.body.answer);
      } finally {
        await second.stop();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('shutdown', () => {
  test('SIGTERM ends open streams with shutting_down and exits 0 (DURABLE_CHATS=off: nothing handed over)', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-shutdown-'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], {
      cwd: path.join(__dirname, '../..'),
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        SIM_LATENCY_MS: '60000',
        LOG_LEVEL: 'warn',
        DURABLE_CHATS: 'off',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /ready at (http:\/\/\S+)/.exec(output);
          if (match) resolve(match[1]);
        });
        child.once('exit', (code) => reject(new Error(`server exited early with ${code}: ${output}`)));
      });
      const stream = await openSse(`${url}/api/chat`, { body: { message: 'a slow question' } });
      await stream.waitFor((event) => event.event === 'agent_start');
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      await stream.ended;
      expect(stream.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'shutting_down' } });
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('drain in process', () => {
  test('readiness fails during the grace period, and endGrace() ends the remaining chats with shutting_down', async () => {
    const troupe = await startTestTroupe({
      SHUTDOWN_GRACE_MS: '60000',
      SIM_LATENCY_MS: '60000',
      // Durable chats would hand the chat over for the next start instead (test/durable/).
      DURABLE_CHATS: 'off',
    });
    const stream = await openSse(`${troupe.url}/api/chat`, { body: { message: 'slow', mode: 'single' } });
    await stream.waitFor((event) => event.event === 'agent_start');
    const closed = troupe.close();
    const health = await request(troupe.url).get('/api/health');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'unhealthy', draining: true });
    const refused = await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .send({ message: 'late' });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('shutting_down');
    expect(stream.events.some((event) => event.event === 'error')).toBe(false);
    troupe.endGrace();
    await stream.ended;
    expect(stream.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'shutting_down' } });
    await closed;
    await troupe.stop();
  });
});
