import request from 'supertest';
import { capturingLogger } from '../helpers/capturing-logger';
import { parseRawResponse, rawConnect } from '../helpers/raw-http';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

describe('the HTTP edge is bounded', () => {
  let troupe: TestTroupe;
  let captured: ReturnType<typeof capturingLogger>;

  beforeAll(async () => {
    captured = capturingLogger();
    troupe = await startTestTroupe({ REQUEST_BODY_TIMEOUT_MS: '600' }, { logger: captured.logger });
  });
  afterAll(() => troupe.stop());
  afterEach(() => {
    // None of these is the server's fault: nothing reaches the error level.
    expect(captured.errors()).toEqual([]);
  });

  test('a malformed %XX in the path answers 400 invalid_request', async () => {
    for (const path of ['/api/runs/%E0%A4%A/events', '/api/conversations/%ZZ', '/api/conversations/%']) {
      const response = await request(troupe.url).get(path);
      expect(response.status).toBe(400);
      expect(response.body.error).toEqual({ code: 'invalid_request', message: expect.any(String) });
    }
  });

  test.each([
    ['spaces and newlines', ' \n\t\r '],
    ['NUL bytes', '\u0000\u0000\u0000'],
    ['control characters', '\u0001\u0007\u001b\u007f'],
    ['zero-width and BOM', '\u200b\u200d\ufeff'],
    ['a mix', ' \u0000\n\u200b '],
  ])('a message of only %s answers 400 and starts no chat', async (_name, message) => {
    const before = troupe.scheduler.status().totalProcessed;
    const response = await request(troupe.url).post('/api/chat').send({ message });
    expect(response.status).toBe(400);
    expect(response.body.error).toEqual({
      code: 'invalid_request',
      message: 'Invalid message: must contain visible text',
    });
    expect(troupe.scheduler.status().totalProcessed).toBe(before);
  });

  test('oversized headers answer 431 with the JSON error shape', async () => {
    const { socket, closed } = await rawConnect(troupe.url);
    socket.write(`GET /api/health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    const { status, body } = parseRawResponse(await closed);
    expect(status).toBe(431);
    expect(body).toEqual({ error: { code: 'headers_too_large', message: expect.any(String) } });
  });

  test('bytes that are not HTTP answer 400 invalid_request', async () => {
    const { socket, closed } = await rawConnect(troupe.url);
    socket.write('NOT HTTP AT ALL\r\n\r\n');
    const { status, body } = parseRawResponse(await closed);
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_request');
  });

  test('a body sent a byte at a time is cut at REQUEST_BODY_TIMEOUT_MS with 408 request_timeout', async () => {
    const { socket, closed } = await rawConnect(troupe.url);
    socket.write(
      'POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mes',
    );
    const drip = setInterval(() => socket.writable && socket.write(' '), 100);
    try {
      const { status, body } = parseRawResponse(await closed);
      expect(status).toBe(408);
      expect(body).toEqual({ error: { code: 'request_timeout', message: expect.any(String) } });
    } finally {
      clearInterval(drip);
    }
  });

  test('slowloris: headers that never finish are cut too', async () => {
    const { socket, closed } = await rawConnect(troupe.url);
    socket.write('GET /api/health/live HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => socket.writable && socket.write('X-A: b\r\n'), 100);
    try {
      const { status } = parseRawResponse(await closed);
      expect(status).toBe(408);
    } finally {
      clearInterval(drip);
    }
  });

  test('many slow-body connections are all cut, and liveness answers meanwhile and after', async () => {
    const connections = await Promise.all(Array.from({ length: 100 }, () => rawConnect(troupe.url)));
    for (const { socket } of connections) {
      socket.write(
        'POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{',
      );
    }
    await request(troupe.url).get('/api/health/live').expect(200);
    const answers = await Promise.all(connections.map(({ closed }) => closed));
    expect(answers.every((answer) => parseRawResponse(answer).status === 408)).toBe(true);
    await request(troupe.url).get('/api/health/live').expect(200);
  });

  test('an upload the client abandons logs no error and leaves the server serving', async () => {
    const { socket, closed } = await rawConnect(troupe.url);
    socket.write(
      'POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"message":',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.destroy();
    await closed;
    await request(troupe.url).get('/api/health/live').expect(200);
  });

  test('a streamed response that lasts longer than the body timeout is not cut', async () => {
    const slow = await startTestTroupe({ REQUEST_BODY_TIMEOUT_MS: '300', SIM_LATENCY_MS: '700' });
    try {
      const stream = await openSse(`${slow.url}/api/chat`, {
        body: { message: 'take your time', mode: 'single' },
      });
      await stream.ended;
      expect(stream.events.at(-1)?.event).toBe('done');
    } finally {
      await slow.stop();
    }
  });
});
