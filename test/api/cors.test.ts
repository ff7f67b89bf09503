import request from 'supertest';
import { parseConfig } from '../../config';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

const ALLOWED = 'https://chat.example.com';

describe('CORS_ORIGINS', () => {
  describe('set to a list', () => {
    let troupe: TestTroupe;
    beforeAll(async () => {
      troupe = await startTestTroupe({ CORS_ORIGINS: `${ALLOWED}, http://localhost:5173/` });
    });
    afterAll(() => troupe.stop());

    test.each(['/api/chat', '/api/runs/some-run/events', '/api/conversations/some-id'])(
      'answers the preflight for %s from a listed origin',
      async (path) => {
        const response = await request(troupe.url)
          .options(path)
          .set('Origin', ALLOWED)
          .set('Access-Control-Request-Method', 'POST')
          .set('Access-Control-Request-Headers', 'content-type,authorization,x-user-id')
          .expect(204);
        expect(response.headers['access-control-allow-origin']).toBe(ALLOWED);
        expect(response.headers['access-control-allow-methods']).toMatch(/POST/);
        expect(response.headers['access-control-allow-headers']).toMatch(/Authorization/i);
        expect(response.headers['access-control-allow-headers']).toMatch(/X-User-Id/i);
      },
    );

    test('a chat from a listed origin carries the header and exposes Retry-After', async () => {
      const response = await request(troupe.url)
        .post('/api/chat')
        .set('Origin', 'http://localhost:5173')
        .set('Accept', 'application/json')
        .send({ message: 'hello from elsewhere', mode: 'single' })
        .expect(200);
      expect(response.headers['access-control-allow-origin']).toBe('http://localhost:5173');
      expect(response.headers['access-control-expose-headers']).toMatch(/Retry-After/);
    });

    test('an unlisted origin gets no CORS header, and admin paths none at all', async () => {
      const other = await request(troupe.url)
        .options('/api/chat')
        .set('Origin', 'https://evil.example')
        .set('Access-Control-Request-Method', 'POST');
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
      const admin = await request(troupe.url)
        .options('/api/queue/pause')
        .set('Origin', ALLOWED)
        .set('Access-Control-Request-Method', 'POST');
      expect(admin.headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  describe('unset', () => {
    let troupe: TestTroupe;
    beforeAll(async () => {
      troupe = await startTestTroupe();
    });
    afterAll(() => troupe.stop());

    test('same origin only: no CORS header for any origin', async () => {
      const preflight = await request(troupe.url)
        .options('/api/chat')
        .set('Origin', ALLOWED)
        .set('Access-Control-Request-Method', 'POST');
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      const chat = await request(troupe.url)
        .post('/api/chat')
        .set('Origin', ALLOWED)
        .set('Accept', 'application/json')
        .send({ message: 'hi', mode: 'single' })
        .expect(200);
      expect(chat.headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  test('a malformed origin stops the start naming CORS_ORIGINS', () => {
    expect(() => parseConfig({ CORS_ORIGINS: 'chat.example.com/path' })).toThrow(/CORS_ORIGINS/);
    expect(parseConfig({ CORS_ORIGINS: '*' }).corsOrigins).toEqual(['*']);
  });
});
