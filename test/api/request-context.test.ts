import { Writable } from 'node:stream';
import express from 'express';
import request from 'supertest';
import { createLogger } from '../../api/logger';
import { requestContext, requestLog } from '../../api/routes/request-context';

/** An app with only the request context, logging into `lines`, and one route that logs a warning. */
function appLoggingAt(level: string, lines: Array<Record<string, unknown>>) {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const app = express();
  app.use(requestContext(createLogger(level, sink), app.request));
  app.get('/warn', (req, res) => {
    req.log?.warn('something to look at');
    res.json({ ok: true });
  });
  app.get('/quiet', (_req, res) => res.json({ ok: true }));
  app.get('/levels', (req, res) => {
    requestLog(req, 'info')?.info('an info line');
    requestLog(req, 'error')?.error('an error line');
    res.json({ info: requestLog(req, 'info') !== undefined, error: requestLog(req, 'error') !== undefined });
  });
  return app;
}

describe('request context', () => {
  test("a line logged while serving a request carries the request's id, also taken from X-Request-Id", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const app = appLoggingAt('warn', lines);
    const answer = await request(app).get('/warn').set('X-Request-Id', 'trace-42');
    expect(answer.headers['x-request-id']).toBe('trace-42');
    await request(app).get('/quiet');
    expect(lines).toEqual([expect.objectContaining({ reqId: 'trace-42', msg: 'something to look at' })]);
  });

  test('at info every request gets one access-log line with its id', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const app = appLoggingAt('info', lines);
    const answer = await request(app).get('/quiet');
    expect(lines).toEqual([
      expect.objectContaining({
        reqId: answer.headers['x-request-id'],
        msg: 'request',
        method: 'GET',
        url: '/quiet',
        status: 200,
      }),
    ]);
  });

  test('requestLog gives the request logger only for a level in force (a line that is off makes no child logger)', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const app = appLoggingAt('warn', lines);
    const answer = await request(app).get('/levels').set('X-Request-Id', 'trace-7');
    expect(answer.body).toEqual({ info: false, error: true });
    expect(lines).toEqual([expect.objectContaining({ reqId: 'trace-7', msg: 'an error line' })]);
  });
});
