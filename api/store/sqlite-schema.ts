/**
 * The embedded store's tables (SQLite). The same document model as MongoStore (documents.ts), as
 * columns: `usage` and `timings` are JSON text; `reasoning` is a thinking model's, apart from `content`. Messages belong to their conversation
 * (ON DELETE CASCADE), so retention deletes a conversation and its messages in one statement.
 */

/** Bumped when the tables change; a newer file than this code refuses to open. */
export const SCHEMA_VERSION = 2;

/** The database file inside DATA_DIR (NeDB's old files were conversations.db and messages.db). */
export const SQLITE_FILE = 'troupe.sqlite';

export const CREATE_TABLES = `
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS conversations_updated_at ON conversations (updated_at);
CREATE TABLE IF NOT EXISTS messages (
  conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  agent TEXT,
  content TEXT NOT NULL,
  created_at TEXT NOT NULL,
  usage TEXT,
  timings TEXT,
  run_id TEXT,
  reasoning TEXT,
  PRIMARY KEY (conversation_id, seq)
);
`;

/**
 * Brings an older file's tables to this version (CREATE TABLE IF NOT EXISTS leaves existing tables
 * as they were). Version 2 added `messages.reasoning`.
 */
export const MIGRATIONS: Readonly<Record<number, string>> = {
  2: 'ALTER TABLE messages ADD COLUMN reasoning TEXT',
};

/** A row of `messages` as better-sqlite3 returns it. */
export interface MessageRow {
  conversation_id: string;
  seq: number;
  id: string;
  role: string;
  agent: string | null;
  content: string;
  created_at: string;
  usage: string | null;
  timings: string | null;
  run_id: string | null;
  reasoning: string | null;
}

/** A row of `conversations` as better-sqlite3 returns it. */
export interface ConversationRow {
  id: string;
  user_id: string;
  created_at: string;
  updated_at: string;
  last_seq: number;
}
