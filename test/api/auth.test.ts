import request from 'supertest';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

describe('API_KEYS: the key decides who is chatting', () => {
  let troupe: TestTroupe;
  beforeAll(async () => {
    troupe = await startTestTroupe({
      API_KEYS: 'key-alice:alice,key-bob:bob',
      USER_MAX_ACTIVE_CHATS: '1',
      SIM_LATENCY_MS: '300',
    });
  });
  afterAll(() => troupe.stop());

  test('chat without a key, or with an unknown one, is 401', async () => {
    const missing = await request(troupe.url).post('/api/chat').send({ message: 'hi' }).expect(401);
    expect(missing.body.error).toEqual({ code: 'unauthorized', message: expect.stringMatching(/Bearer/) });
    await request(troupe.url)
      .post('/api/chat')
      .set('Authorization', 'Bearer nope')
      .send({ message: 'hi' })
      .expect(401);
  });

  test("a user's conversation and run are not visible to another key", async () => {
    const stream = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'private question', mode: 'single', userId: 'someone-else' },
      headers: { Authorization: 'Bearer key-alice' },
    });
    await stream.ended;
    const { runId, conversationId } = stream.events[0].data;
    const mine = await request(troupe.url)
      .get(`/api/conversations/${conversationId}`)
      .set('Authorization', 'Bearer key-alice')
      .expect(200);
    expect(mine.body.userId).toBe('alice');
    await request(troupe.url)
      .get(`/api/conversations/${conversationId}`)
      .set('Authorization', 'Bearer key-bob')
      .expect(404);
    await request(troupe.url).get(`/api/conversations/${conversationId}`).expect(401);

    // EventSource clients pass the key as ?access_token=.
    const replay = await openSse(`${troupe.url}/api/runs/${runId}/events?access_token=key-alice`);
    await replay.ended;
    expect(replay.events.at(-1)?.event).toBe('done');
    await request(troupe.url).get(`/api/runs/${runId}/events?access_token=key-bob`).expect(404);
  });

  test('USER_MAX_ACTIVE_CHATS holds under concurrent requests from one user', async () => {
    const responses = await Promise.all(
      Array.from({ length: 5 }, () =>
        request(troupe.url)
          .post('/api/chat')
          .set('Accept', 'application/json')
          .set('Authorization', 'Bearer key-bob')
          .send({ message: 'at once', mode: 'single' }),
      ),
    );
    const statuses = responses.map((response) => response.status).sort();
    expect(statuses).toEqual([200, 429, 429, 429, 429]);
    const limited = responses.find((response) => response.status === 429)!;
    expect(limited.body.error.code).toBe('user_rate_limited');
    expect(limited.headers['retry-after']).toBe('1');
  });
});
