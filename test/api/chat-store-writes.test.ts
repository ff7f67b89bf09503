import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { SqliteStore } from '../../api/store/sqlite-store';
import type { AppendOptions, NewMessage } from '../../api/store/store';

/** The embedded store, recording which writes a chat makes. */
class RecordingStore extends SqliteStore {
  readonly writes: string[] = [];
  override async ensureConversation(id: string, userId: string) {
    this.writes.push('ensureConversation');
    return super.ensureConversation(id, userId);
  }
  override async appendMessages(messages: NewMessage[], options?: AppendOptions) {
    this.writes.push(
      options?.createFor
        ? `appendMessages(${messages.length}, createFor)`
        : `appendMessages(${messages.length})`,
    );
    return super.appendMessages(messages, options);
  }
}

describe('what a chat writes to the store', () => {
  let troupe: TestTroupe;
  let store: RecordingStore;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-store-writes-'));
    store = new RecordingStore({ directory: dataDir });
    troupe = await startTestTroupe({ LLM_CACHE: 'off', TOOL_MAX_ROUNDS: '0' }, { store });
  });

  afterAll(async () => {
    await troupe.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('a new JSON chat stores its conversation and its turn in one write; the conversation is then as any other', async () => {
    store.writes.length = 0;
    const answer = await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .set('X-User-Id', 'dora')
      .send({ message: 'One write, please', mode: 'single' })
      .expect(200);
    expect(store.writes).toEqual(['appendMessages(2, createFor)']);
    const conversation = await request(troupe.url)
      .get(`/api/conversations/${answer.body.conversationId}`)
      .set('X-User-Id', 'dora')
      .expect(200);
    expect(conversation.body).toMatchObject({ userId: 'dora' });
    expect(conversation.body.messages.map((message: { role: string }) => message.role)).toEqual([
      'user',
      'assistant',
    ]);
  });

  test('a streamed chat stores its conversation at once (its client knows the id from the first event)', async () => {
    store.writes.length = 0;
    const stream = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'Two writes, then', mode: 'single' },
    });
    await stream.ended;
    expect(store.writes).toEqual(['ensureConversation', 'appendMessages(2)']);
  });
});
