import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { SqliteStore } from '../../api/store/sqlite-store';
import { hasNedbFiles, importNedbDirectory } from '../../api/store/nedb-import';
import { capturingLogger } from '../helpers/capturing-logger';
import { startTestTroupe } from '../helpers/test-server';

const repositoryRoot = path.join(__dirname, '../..');

/** NeDB's own line format: one JSON document per line, appended on every write. */
function writeNedbFiles(directory: string, options: { tornLastLine?: boolean } = {}): void {
  const at = '2025-01-01T00:00:00.000Z';
  const conversations = [
    { id: 'c-1', userId: 'alice', createdAt: at, updatedAt: at, lastSeq: 0, _id: 'n1' },
    { id: 'c-2', userId: 'bob', createdAt: at, updatedAt: at, lastSeq: 0, _id: 'n2' },
    { $$indexCreated: { fieldName: 'id', unique: true } },
    // Sequence reservations rewrite the document: the last line wins.
    {
      id: 'c-1',
      userId: 'alice',
      createdAt: at,
      updatedAt: '2025-01-02T00:00:00.000Z',
      lastSeq: 2,
      _id: 'n1',
    },
    { id: 'c-gone', userId: 'eve', createdAt: at, updatedAt: at, lastSeq: 0, _id: 'n3' },
    { $$deleted: true, _id: 'n3' },
  ];
  const messages = [
    { id: 'm-1', conversationId: 'c-1', seq: 1, role: 'user', content: 'hello', createdAt: at, _id: 'x1' },
    {
      id: 'm-2',
      conversationId: 'c-1',
      seq: 2,
      role: 'agent',
      agent: 'planner',
      content: '1. plan — 中文',
      createdAt: at,
      usage: { promptTokens: 3, completionTokens: 4 },
      timings: { waitMs: 1, processMs: 2 },
      runId: 'r-1',
      _id: 'x2',
    },
    {
      id: 'm-3',
      conversationId: 'c-gone',
      seq: 1,
      role: 'user',
      content: 'orphan',
      createdAt: at,
      _id: 'x3',
    },
  ];
  const lines = (documents: object[]) =>
    documents.map((document) => JSON.stringify(document)).join('\n') + '\n';
  fs.writeFileSync(path.join(directory, 'conversations.db'), lines(conversations));
  fs.writeFileSync(
    path.join(directory, 'messages.db'),
    lines(messages) + (options.tornLastLine ? '{"id":"m-4","conversationId":"c-1","se' : ''),
  );
}

describe('NeDB import (npm run migrate-store)', () => {
  let root: string;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-migrate-'));
  });

  afterEach(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('imports live documents (last line wins, deleted ones dropped, a torn last line skipped)', async () => {
    writeNedbFiles(root, { tornLastLine: true });
    expect(hasNedbFiles(root)).toBe(true);
    const report = await importNedbDirectory(root);
    expect(report).toMatchObject({ conversations: 2, messages: 2, skippedLines: 1 });
    expect(hasNedbFiles(root)).toBe(false);
    expect(fs.readdirSync(path.join(root, 'nedb-migrated')).sort()).toEqual([
      'conversations.db',
      'messages.db',
    ]);

    const store = new SqliteStore({ directory: root });
    await store.init();
    expect(await store.getConversation('c-1')).toEqual({
      id: 'c-1',
      userId: 'alice',
      createdAt: '2025-01-01T00:00:00.000Z',
      updatedAt: '2025-01-02T00:00:00.000Z',
    });
    expect(await store.getConversation('c-gone')).toBeNull();
    const listed = await store.listMessages('c-1');
    expect(listed[1]).toEqual({
      id: 'm-2',
      conversationId: 'c-1',
      role: 'agent',
      agent: 'planner',
      content: '1. plan — 中文',
      createdAt: '2025-01-01T00:00:00.000Z',
      usage: { promptTokens: 3, completionTokens: 4 },
      timings: { waitMs: 1, processMs: 2 },
      runId: 'r-1',
    });
    // The sequence counter came along: a new append lands after the imported messages.
    await store.appendMessages([{ conversationId: 'c-1', role: 'assistant', content: 'after' }]);
    expect((await store.listMessages('c-1')).map((message) => message.content)).toEqual([
      'hello',
      '1. plan — 中文',
      'after',
    ]);
    await store.close();
  });

  test('refuses to import over a SQLite store that already holds conversations', async () => {
    const store = new SqliteStore({ directory: root });
    await store.init();
    await store.ensureConversation('existing', 'alice');
    await store.close();
    writeNedbFiles(root);
    await expect(importNedbDirectory(root)).rejects.toThrow(/already holds 1 conversations/);
    expect(hasNedbFiles(root)).toBe(true);
  });

  test('a server started on a directory that still holds NeDB files says to migrate, and starts', async () => {
    writeNedbFiles(root);
    const captured = capturingLogger('warn');
    const troupe = await startTestTroupe({ DATA_DIR: root }, { logger: captured.logger });
    await troupe.stop();
    expect(captured.raw.some((line) => line.includes('npm run migrate-store'))).toBe(true);
  });

  test('the npm script migrates a directory in one command', () => {
    writeNedbFiles(root);
    const output = execFileSync(
      process.execPath,
      ['--import', 'tsx', 'scripts/migrate-nedb.ts', '--data-dir', root],
      { cwd: repositoryRoot, encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent' } },
    );
    expect(output).toMatch(/migrated 2 conversations and 2 messages/);
  });
});
