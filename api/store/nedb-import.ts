import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import Database from 'better-sqlite3';
import { SqliteStore } from './sqlite-store';

/**
 * Imports the first embedded store's NeDB files (DATA_DIR/conversations.db, messages.db) into the
 * SQLite store, read directly so NeDB itself is no longer a dependency. A NeDB file is
 * newline-delimited JSON, appended to on every write: a later line with the same `_id` replaces the
 * earlier one, `{"$$deleted":true,"_id":…}` removes it, `{"$$indexCreated":…}` lines describe
 * indexes. Lines are staged by `_id` in SQLite itself, so memory stays flat whatever the file size.
 */

export const NEDB_FILES = ['conversations.db', 'messages.db'] as const;
/** Where the NeDB files are moved once imported (kept, not deleted). */
export const NEDB_BACKUP_DIRECTORY = 'nedb-migrated';

export interface NedbImportReport {
  conversations: number;
  messages: number;
  /** Lines that were not JSON (a torn last write, usually): skipped. */
  skippedLines: number;
  backupDirectory: string;
}

export class NedbImportError extends Error {
  readonly code = 'migration_failed';
  constructor(message: string) {
    super(message);
    this.name = 'NedbImportError';
  }
}

/** True when `directory` holds NeDB files that have not been imported yet. */
export function hasNedbFiles(directory: string): boolean {
  return NEDB_FILES.some((file) => fs.existsSync(path.join(directory, file)));
}

/**
 * Imports `directory`'s NeDB files into its SQLite store, then moves them to nedb-migrated/.
 * Refuses when the SQLite store already holds conversations (nothing is overwritten).
 */
export async function importNedbDirectory(directory: string): Promise<NedbImportReport> {
  if (!hasNedbFiles(directory)) {
    throw new NedbImportError(`No NeDB files (${NEDB_FILES.join(', ')}) in ${path.resolve(directory)}`);
  }
  const store = new SqliteStore({ directory });
  await store.init();
  await store.close();
  const database = new Database(store.file);
  database.pragma('journal_mode = WAL');
  database.pragma('foreign_keys = ON');
  let skippedLines = 0;
  try {
    const existing = database.prepare('SELECT COUNT(*) AS n FROM conversations').get() as { n: number };
    if (existing.n > 0) {
      throw new NedbImportError(
        `${store.file} already holds ${existing.n} conversations; move it away to import again`,
      );
    }
    database.exec(`
      CREATE TEMP TABLE staged (collection TEXT NOT NULL, nedb_id TEXT NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (collection, nedb_id));
    `);
    for (const file of NEDB_FILES) {
      skippedLines += await stageFile(database, path.join(directory, file), file.replace('.db', ''));
    }
    const result = database.transaction(() => {
      const conversations = database
        .prepare(
          `INSERT INTO conversations (id, user_id, created_at, updated_at, last_seq)
           SELECT json_extract(doc, '$.id'), json_extract(doc, '$.userId'), json_extract(doc, '$.createdAt'),
                  json_extract(doc, '$.updatedAt'), COALESCE(json_extract(doc, '$.lastSeq'), 0)
           FROM staged WHERE collection = 'conversations' AND json_extract(doc, '$.id') IS NOT NULL`,
        )
        .run().changes;
      // Messages whose conversation is gone are dropped (the store never lists them anyway).
      const messages = database
        .prepare(
          `INSERT INTO messages (conversation_id, seq, id, role, agent, content, created_at, usage, timings, run_id)
           SELECT json_extract(doc, '$.conversationId'), json_extract(doc, '$.seq'), json_extract(doc, '$.id'),
                  json_extract(doc, '$.role'), json_extract(doc, '$.agent'), json_extract(doc, '$.content'),
                  json_extract(doc, '$.createdAt'), json(json_extract(doc, '$.usage')),
                  json(json_extract(doc, '$.timings')), json_extract(doc, '$.runId')
           FROM staged
           WHERE collection = 'messages'
             AND json_extract(doc, '$.conversationId') IN (SELECT id FROM conversations)
           ORDER BY json_extract(doc, '$.conversationId'), json_extract(doc, '$.seq')`,
        )
        .run().changes;
      return { conversations, messages };
    })();
    database.exec('DROP TABLE staged');
    database.pragma('wal_checkpoint(TRUNCATE)');
    database.close();
    const backupDirectory = path.join(directory, NEDB_BACKUP_DIRECTORY);
    fs.mkdirSync(backupDirectory, { recursive: true });
    for (const file of NEDB_FILES) {
      const from = path.join(directory, file);
      if (fs.existsSync(from)) fs.renameSync(from, path.join(backupDirectory, file));
    }
    return { ...result, skippedLines, backupDirectory };
  } finally {
    if (database.open) database.close();
  }
}

/** Stages one NeDB file's live documents by `_id`; returns the number of unreadable lines. */
async function stageFile(database: Database.Database, file: string, collection: string): Promise<number> {
  if (!fs.existsSync(file)) return 0;
  const upsert = database.prepare(
    'INSERT INTO staged (collection, nedb_id, doc) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET doc = excluded.doc',
  );
  const remove = database.prepare('DELETE FROM staged WHERE collection = ? AND nedb_id = ?');
  let skipped = 0;
  let batch: string[] = [];
  const flush = database.transaction((lines: string[]) => {
    for (const line of lines) {
      let document: { _id?: unknown; $$deleted?: unknown; $$indexCreated?: unknown };
      try {
        document = JSON.parse(line);
      } catch {
        skipped++;
        continue;
      }
      if (document === null || typeof document !== 'object' || document.$$indexCreated !== undefined)
        continue;
      if (typeof document._id !== 'string') {
        skipped++;
        continue;
      }
      if (document.$$deleted === true) remove.run(collection, document._id);
      else upsert.run(collection, document._id, line);
    }
  });
  const lines = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    batch.push(line);
    if (batch.length >= 5000) {
      flush(batch);
      batch = [];
    }
  }
  flush(batch);
  return skipped;
}
