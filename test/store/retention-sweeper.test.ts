import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ManualClock, flushMicrotasks } from '../../api/clock';
import { RetentionSweeper } from '../../api/store/retention-sweeper';
import { SqliteStore } from '../../api/store/sqlite-store';

const DAY_MS = 86_400_000;

describe('RetentionSweeper (CONVERSATION_TTL_DAYS)', () => {
  let root: string;
  let clock: ManualClock;
  let store: SqliteStore;

  beforeEach(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-retention-'));
    clock = new ManualClock(Date.parse('2025-01-01T00:00:00.000Z'));
    store = new SqliteStore({ directory: root, clock });
    await store.init();
  });

  afterEach(async () => {
    await store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('purges on its clock: once soon after start, then every interval', async () => {
    await store.ensureConversation('old', 'alice');
    clock.advance(29 * DAY_MS);
    await store.ensureConversation('recent', 'bob');
    const sweeper = new RetentionSweeper({ store, ttlDays: 30, clock, intervalMs: 3_600_000 });
    sweeper.start();
    clock.advance(1000);
    await flushMicrotasks();
    expect(await store.getConversation('old')).not.toBeNull(); // 29 days old: kept
    for (let hour = 0; hour < 24; hour++) {
      expect(await store.getConversation('old')).not.toBeNull();
      clock.advance(3_600_000);
      await flushMicrotasks();
    }
    expect(await store.getConversation('old')).toBeNull();
    expect(await store.getConversation('recent')).not.toBeNull();
    expect(clock.pendingTimers()).toBe(1);
    await sweeper.stop();
    expect(clock.pendingTimers()).toBe(0);
  });

  test('0 days keeps everything and sets no timer', async () => {
    await store.ensureConversation('old', 'alice');
    const sweeper = new RetentionSweeper({ store, ttlDays: 0, clock });
    sweeper.start();
    expect(clock.pendingTimers()).toBe(0);
    clock.advance(10_000 * DAY_MS);
    expect(await store.getConversation('old')).not.toBeNull();
  });

  test('a failing store is logged and retried at the next interval', async () => {
    const warnings: unknown[] = [];
    const failing = { purgeConversations: () => Promise.reject(new Error('disk gone')) };
    const sweeper = new RetentionSweeper({
      store: failing as never,
      ttlDays: 1,
      clock,
      logger: { warn: (...args: unknown[]) => warnings.push(args), info: () => {} } as never,
    });
    expect(await sweeper.sweep()).toBe(0);
    expect(warnings).toHaveLength(1);
  });
});
