import { randomUUID } from 'node:crypto';
import { ManualClock } from '../../api/clock';
import type { Clock } from '../../api/clock';
import type { NewMessage, Store } from '../../api/store/store';

/** How the behaviour suite gets a fresh, initialised store for each test and disposes of it. */
export interface StoreHarness {
  create(options: { clock: Clock }): Promise<Store>;
  destroy(store: Store): Promise<void>;
}

/**
 * The Store contract, written once and run against every adapter (embedded and MongoDB).
 * Call inside a `describe` (or `describe.skip`) block.
 */
export function describeStoreBehaviour(harness: StoreHarness): void {
  let clock: ManualClock;
  let store: Store;

  beforeEach(async () => {
    clock = new ManualClock(Date.parse('2025-01-01T00:00:00.000Z'));
    store = await harness.create({ clock });
  });

  afterEach(async () => {
    await harness.destroy(store);
  });

  const userMessage = (conversationId: string, content: string): NewMessage => ({
    conversationId,
    role: 'user',
    content,
  });

  test('ensureConversation creates once and returns the same conversation afterwards', async () => {
    const id = randomUUID();
    const created = await store.ensureConversation(id, 'alice');
    expect(created).toEqual({
      id,
      userId: 'alice',
      createdAt: '2025-01-01T00:00:00.000Z',
      updatedAt: '2025-01-01T00:00:00.000Z',
    });
    clock.advance(1000);
    const again = await store.ensureConversation(id, 'someone-else');
    expect(again).toEqual(created);
    expect(await store.getConversation(id)).toEqual(created);
  });

  test('concurrent ensureConversation calls for one id agree on a single conversation', async () => {
    const id = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) => store.ensureConversation(id, `user-${index}`)),
    );
    const userIds = new Set(results.map((conversation) => conversation.userId));
    expect(userIds.size).toBe(1);
    expect(await store.getConversation(id)).toEqual(results[0]);
  });

  test('getConversation answers null for an unknown id', async () => {
    expect(await store.getConversation(randomUUID())).toBeNull();
  });

  test('appendMessages returns ids and createdAt, keeps order, and bumps updatedAt', async () => {
    const id = randomUUID();
    await store.ensureConversation(id, 'alice');
    clock.advance(5000);
    const stored = await store.appendMessages([
      userMessage(id, 'first'),
      { conversationId: id, role: 'agent', agent: 'host', content: 'second' },
      {
        conversationId: id,
        role: 'assistant',
        content: 'third',
        id: 'my-own-id',
        createdAt: '2024-12-31T23:59:59.000Z',
      },
    ]);
    expect(stored.map((message) => message.content)).toEqual(['first', 'second', 'third']);
    for (const message of stored) {
      expect(typeof message.id).toBe('string');
      expect(message.id.length).toBeGreaterThan(0);
      expect(message.conversationId).toBe(id);
    }
    expect(new Set(stored.map((message) => message.id)).size).toBe(3);
    expect(stored[0].createdAt).toBe('2025-01-01T00:00:05.000Z');
    expect(stored[2]).toMatchObject({ id: 'my-own-id', createdAt: '2024-12-31T23:59:59.000Z' });

    const listed = await store.listMessages(id);
    expect(listed).toEqual(stored);
    expect((await store.getConversation(id))?.updatedAt).toBe('2025-01-01T00:00:05.000Z');
  });

  test('appendMessages with no messages is a no-op', async () => {
    expect(await store.appendMessages([])).toEqual([]);
  });

  test('appendMessages to an unknown conversation rejects with not_found and stores nothing', async () => {
    const id = randomUUID();
    await expect(store.appendMessages([userMessage(id, 'orphan')])).rejects.toMatchObject({
      code: 'not_found',
    });
    expect(await store.listMessages(id)).toEqual([]);
  });

  test('appendMessages with createFor creates a missing conversation for that user and appends to it', async () => {
    const id = randomUUID();
    clock.advance(2000);
    const stored = await store.appendMessages([userMessage(id, 'hello'), userMessage(id, 'again')], {
      createFor: 'alice',
    });
    expect(stored.map((message) => message.content)).toEqual(['hello', 'again']);
    expect(await store.getConversation(id)).toEqual({
      id,
      userId: 'alice',
      createdAt: '2025-01-01T00:00:02.000Z',
      updatedAt: '2025-01-01T00:00:02.000Z',
    });
    expect(await store.listMessages(id)).toEqual(stored);
  });

  test('appendMessages with createFor leaves an existing conversation, and its owner, as they are', async () => {
    const id = randomUUID();
    const created = await store.ensureConversation(id, 'alice');
    await store.appendMessages([userMessage(id, 'first')]);
    clock.advance(1000);
    await store.appendMessages([userMessage(id, 'second')], { createFor: 'mallory' });
    expect(await store.getConversation(id)).toEqual({ ...created, updatedAt: '2025-01-01T00:00:01.000Z' });
    expect((await store.listMessages(id)).map((message) => message.content)).toEqual(['first', 'second']);
  });

  test('order follows append order even when every createdAt is the same', async () => {
    const id = randomUUID();
    await store.ensureConversation(id, 'alice');
    // The manual clock never moves here: every message has the same createdAt.
    for (let turn = 0; turn < 5; turn++) {
      await store.appendMessages([
        userMessage(id, `q${turn}`),
        { conversationId: id, role: 'assistant', content: `a${turn}` },
      ]);
    }
    const listed = await store.listMessages(id);
    expect(new Set(listed.map((message) => message.createdAt)).size).toBe(1);
    expect(listed.map((message) => message.content)).toEqual([
      'q0',
      'a0',
      'q1',
      'a1',
      'q2',
      'a2',
      'q3',
      'a3',
      'q4',
      'a4',
    ]);
  });

  test('listMessages with a limit keeps the newest N, oldest first', async () => {
    const id = randomUUID();
    await store.ensureConversation(id, 'alice');
    await store.appendMessages(Array.from({ length: 10 }, (_, index) => userMessage(id, `m${index}`)));
    const contents = async (limit?: number) =>
      (await store.listMessages(id, limit === undefined ? {} : { limit })).map((message) => message.content);
    expect(await contents(3)).toEqual(['m7', 'm8', 'm9']);
    expect(await contents(1)).toEqual(['m9']);
    expect(await contents(50)).toHaveLength(10);
    expect(await contents(0)).toEqual([]);
    expect(await contents()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
  });

  test('listMessages answers [] for an unknown conversation and never mixes conversations', async () => {
    const first = randomUUID();
    const second = randomUUID();
    await store.ensureConversation(first, 'alice');
    await store.ensureConversation(second, 'bob');
    const stored = await store.appendMessages([
      userMessage(first, 'to first'),
      userMessage(second, 'to second'),
    ]);
    expect(stored.map((message) => message.conversationId)).toEqual([first, second]);
    expect((await store.listMessages(first)).map((message) => message.content)).toEqual(['to first']);
    expect((await store.listMessages(second)).map((message) => message.content)).toEqual(['to second']);
    expect(await store.listMessages(randomUUID())).toEqual([]);
  });

  test('many concurrent appends keep every message, each turn contiguous and in order', async () => {
    const id = randomUUID();
    const other = randomUUID();
    await store.ensureConversation(id, 'alice');
    await store.ensureConversation(other, 'bob');
    const turns = 100;
    const results = await Promise.all(
      Array.from({ length: turns }, (_, turn) =>
        store.appendMessages([
          userMessage(turn % 4 === 0 ? other : id, `q${turn}`),
          { conversationId: turn % 4 === 0 ? other : id, role: 'assistant', content: `a${turn}` },
        ]),
      ),
    );
    const allIds = results.flat().map((message) => message.id);
    expect(new Set(allIds).size).toBe(turns * 2);

    const listed = [...(await store.listMessages(id)), ...(await store.listMessages(other))];
    expect(listed).toHaveLength(turns * 2);
    for (const conversationId of [id, other]) {
      const contents = (await store.listMessages(conversationId)).map((message) => message.content);
      for (let index = 0; index < contents.length; index += 2) {
        // A turn's question is followed directly by its answer: appends never interleave.
        expect(contents[index + 1]).toBe(contents[index].replace('q', 'a'));
      }
    }
  });

  test('appends made at once succeed or fail each alone: a failing one takes no other with it', async () => {
    const id = randomUUID();
    await store.ensureConversation(id, 'alice');
    await store.appendMessages([{ ...userMessage(id, 'taken'), id: 'message-taken' }]);
    const outcomes = await Promise.allSettled([
      store.appendMessages([userMessage(id, 'first')]),
      store.appendMessages([userMessage(randomUUID(), 'to an unknown conversation')]),
      store.appendMessages([userMessage(id, 'second')]),
      store.appendMessages([
        userMessage(id, 'with a taken id'),
        { ...userMessage(id, 'dup'), id: 'message-taken' },
      ]),
      store.appendMessages([userMessage(id, 'third')], { createFor: 'alice' }),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'not_found' });
    const contents = (await store.listMessages(id)).map((message) => message.content);
    expect(contents).toEqual(['taken', 'first', 'second', 'third']);
  });

  test('agent, usage, timings and runId round-trip; unset fields stay absent', async () => {
    const id = randomUUID();
    await store.ensureConversation(id, 'alice');
    const [agentMessage, plain] = await store.appendMessages([
      {
        conversationId: id,
        role: 'agent',
        agent: 'planner',
        content: '1. Think\n2. Answer — 中文也可以',
        usage: { promptTokens: 120, completionTokens: 48 },
        timings: { waitMs: 15, processMs: 900, totalMs: 915 },
        runId: 'run-1',
      },
      userMessage(id, 'plain'),
    ]);
    const [listedAgent, listedPlain] = await store.listMessages(id);
    expect(listedAgent).toEqual(agentMessage);
    expect(listedAgent).toEqual({
      id: agentMessage.id,
      conversationId: id,
      role: 'agent',
      agent: 'planner',
      content: '1. Think\n2. Answer — 中文也可以',
      createdAt: '2025-01-01T00:00:00.000Z',
      usage: { promptTokens: 120, completionTokens: 48 },
      timings: { waitMs: 15, processMs: 900, totalMs: 915 },
      runId: 'run-1',
    });
    expect(listedPlain).toEqual(plain);
    expect(Object.keys(listedPlain).sort()).toEqual(['content', 'conversationId', 'createdAt', 'id', 'role']);
  });

  test("a thinking model's reasoning is stored in its own field, apart from the content", async () => {
    const id = randomUUID();
    await store.ensureConversation(id, 'alice');
    await store.appendMessages([
      {
        conversationId: id,
        role: 'assistant',
        agent: 'reporter',
        content: 'The answer.',
        reasoning: 'Let me think.',
      },
    ]);
    const [listed] = await store.listMessages(id);
    expect(listed).toMatchObject({ content: 'The answer.', reasoning: 'Let me think.' });
  });

  test('purgeConversations removes conversations last updated before the cutoff, with their messages', async () => {
    const old = randomUUID();
    const touched = randomUUID();
    const fresh = randomUUID();
    await store.ensureConversation(old, 'alice');
    await store.ensureConversation(touched, 'alice');
    await store.appendMessages([userMessage(old, 'old'), userMessage(touched, 'touched')]);
    clock.advance(10 * 86_400_000);
    await store.appendMessages([userMessage(touched, 'recent')]);
    await store.ensureConversation(fresh, 'bob');
    const cutoff = new Date(clock.now() - 86_400_000).toISOString();

    expect(await store.purgeConversations({ updatedBefore: cutoff })).toBe(1);
    expect(await store.getConversation(old)).toBeNull();
    expect(await store.listMessages(old)).toEqual([]);
    expect((await store.listMessages(touched)).map((message) => message.content)).toEqual([
      'touched',
      'recent',
    ]);
    expect(await store.getConversation(fresh)).not.toBeNull();
    expect(await store.purgeConversations({ updatedBefore: cutoff })).toBe(0);
    // A purged id starts over as a new conversation.
    await store.ensureConversation(old, 'carol');
    expect(await store.listMessages(old)).toEqual([]);
  });

  test('purgeConversations works through more conversations than one batch', async () => {
    const ids = Array.from({ length: 1203 }, () => randomUUID());
    for (const id of ids) await store.ensureConversation(id, 'alice');
    await store.appendMessages(ids.map((id) => userMessage(id, 'x')));
    clock.advance(1000);
    const keep = randomUUID();
    await store.ensureConversation(keep, 'bob');
    expect(await store.purgeConversations({ updatedBefore: new Date(clock.now()).toISOString() })).toBe(1203);
    expect(await store.getConversation(ids[600])).toBeNull();
    expect(await store.getConversation(keep)).not.toBeNull();
  });

  test('ping resolves on a working store', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });
}
