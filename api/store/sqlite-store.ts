import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { wallClock, type Clock } from '../clock';
import { GroupCommit } from './group-commit';
import {
  StoreStateError,
  StoreUnavailableError,
  groupByConversation,
  inInputOrder,
  normaliseLimit,
  toMessageDocuments,
  toStoredMessage,
  unknownConversation,
  type MessageDocument,
} from './documents';
import {
  CREATE_TABLES,
  MIGRATIONS,
  SCHEMA_VERSION,
  SQLITE_FILE,
  type ConversationRow,
  type MessageRow,
} from './sqlite-schema';
import type { AppendOptions, Conversation, NewMessage, PurgeOptions, Store, StoredMessage } from './store';

export interface SqliteStoreOptions {
  /** Directory holding troupe.sqlite (and its -wal / -shm files); created when missing. */
  directory: string;
  clock?: Clock;
}

/** Conversations deleted per transaction while purging: each batch is a few ms of work. */
const PURGE_BATCH = 500;

type Statement = Database.Statement;

/** One appendMessages call, as the group commit writes it. */
interface AppendJob {
  messages: NewMessage[];
  now: string;
  createFor?: string;
}

type AppendResult = Map<string, MessageDocument[]>;

/**
 * The default store: SQLite through better-sqlite3, one file under DATA_DIR in WAL mode. Only the
 * page cache lives in memory (SQLite's default, ~2 MB), so memory does not grow with history and
 * start-up reads nothing but the schema. The appends of one event-loop turn commit together
 * (group-commit.ts), each still all or nothing: a crash or a torn write loses at most the
 * transaction in flight (WAL frames carry checksums), never an earlier one, and an append resolves
 * only once committed. Statements are prepared once. Several processes on one host may share a
 * directory (`--workers N`, or several instances on one machine): WAL and SQLite's file locks
 * serialise their writes (busy_timeout waits for the lock) and each reads the others' commits; a
 * directory on a network filesystem, shared between hosts, is not safe (WAL needs shared memory).
 */
export class SqliteStore implements Store {
  private readonly directory: string;
  private readonly clock: Clock;
  private database?: Database.Database;
  private statements?: ReturnType<typeof prepare>;
  private state: 'new' | 'open' | 'closed' = 'new';

  constructor(options: SqliteStoreOptions) {
    this.directory = path.resolve(options.directory);
    // Its timestamps are read by people: wall time, not the monotonic scheduler time.
    this.clock = options.clock ?? wallClock;
  }

  /** The database file's path (for the migration script and diagnostics). */
  get file(): string {
    return path.join(this.directory, SQLITE_FILE);
  }

  /** Creates the directory and the file, switches to WAL and creates the tables. Idempotent. */
  async init(): Promise<void> {
    if (this.state === 'closed') throw new StoreStateError('SqliteStore', 'closed');
    if (this.state === 'open') return;
    let database: Database.Database | undefined;
    try {
      fs.mkdirSync(this.directory, { recursive: true });
      database = new Database(this.file);
      // WAL: readers never block the writer, and a commit is one append to the log. NORMAL
      // syncs at checkpoints: a power cut may lose the last commits, never corrupt the file.
      database.pragma('journal_mode = WAL');
      database.pragma('synchronous = NORMAL');
      database.pragma('foreign_keys = ON');
      database.pragma('busy_timeout = 5000');
      const version = database.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new Error(`its schema version ${version} is newer than this Troupe's (${SCHEMA_VERSION})`);
      }
      // A new file gets today's tables; an older one (version ≥ 1: its tables exist) its migrations.
      database.exec(CREATE_TABLES);
      if (version > 0)
        for (let next = version + 1; next <= SCHEMA_VERSION; next++) database.exec(MIGRATIONS[next]);
      database.pragma(`user_version = ${SCHEMA_VERSION}`);
      this.statements = prepare(database);
      this.database = database;
      this.state = 'open';
    } catch (error) {
      database?.close();
      throw new StoreUnavailableError(
        `Embedded store could not open ${this.file}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  }

  async ensureConversation(id: string, userId: string): Promise<Conversation> {
    const statements = this.open();
    const now = this.nowIso();
    // The first caller's row stands. A new conversation (the usual case: the server made up its
    // id) comes back from the INSERT itself; only an existing one costs a second statement.
    const inserted = statements.insertConversation.get(id, userId, now, now) as ConversationRow | undefined;
    return toConversation(inserted ?? (statements.getConversation.get(id) as ConversationRow));
  }

  async getConversation(id: string): Promise<Conversation | null> {
    const row = this.open().getConversation.get(id) as ConversationRow | undefined;
    return row ? toConversation(row) : null;
  }

  async appendMessages(messages: NewMessage[], options: AppendOptions = {}): Promise<StoredMessage[]> {
    if (messages.length === 0) return [];
    const { appends } = this.open();
    const documents = await appends.submit({
      messages,
      now: this.nowIso(),
      createFor: options.createFor,
    });
    return inInputOrder(messages, documents);
  }

  async listMessages(conversationId: string, options: { limit?: number } = {}): Promise<StoredMessage[]> {
    const statements = this.open();
    const limit = normaliseLimit(options.limit);
    if (limit === 0) return [];
    const rows =
      limit === undefined
        ? (statements.listAll.all(conversationId) as MessageRow[])
        : (statements.listNewest.all(conversationId, limit) as MessageRow[]).reverse();
    return rows.map(fromRow);
  }

  async purgeConversations(options: PurgeOptions): Promise<number> {
    let purged = 0;
    for (;;) {
      const statements = this.open();
      const { changes } = statements.purgeBatch.run(options.updatedBefore, PURGE_BATCH);
      purged += changes;
      if (changes < PURGE_BATCH) return purged;
      // Let requests in between batches: a large purge never holds the event loop for long.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async ping(): Promise<void> {
    const statements = this.open();
    try {
      fs.accessSync(this.directory, fs.constants.W_OK);
      statements.ping.get();
    } catch (error) {
      throw new StoreUnavailableError(`Embedded store ${this.file} is not usable: ${String(error)}`, {
        cause: error,
      });
    }
  }

  /** Folds the WAL back into the file and closes it. Further calls reject. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    // What callers are waiting for is written before the file closes.
    this.statements?.appends.flush();
    this.state = 'closed';
    const database = this.database;
    this.database = undefined;
    this.statements = undefined;
    if (!database) return;
    try {
      database.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      database.close();
    }
  }

  private open(): ReturnType<typeof prepare> {
    if (this.state === 'closed') throw new StoreStateError('SqliteStore', 'closed');
    if (!this.statements) throw new StoreStateError('SqliteStore', 'not initialised');
    return this.statements;
  }

  private nowIso(): string {
    return new Date(this.clock.now()).toISOString();
  }
}

function prepare(database: Database.Database) {
  const statement = (sql: string): Statement => database.prepare(sql);
  const statements = {
    insertConversation: statement(
      'INSERT INTO conversations (id, user_id, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING *',
    ),
    getConversation: statement('SELECT * FROM conversations WHERE id = ?'),
    reserveSeq: statement(
      'UPDATE conversations SET last_seq = last_seq + ?, updated_at = ? WHERE id = ? RETURNING last_seq',
    ),
    // A conversation created with its turn's messages: their sequence numbers are reserved in the
    // same row (last_seq), so the turn needs no UPDATE of the row it has just written.
    createWithSeq: statement(
      'INSERT INTO conversations (id, user_id, created_at, updated_at, last_seq) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
    ),
    // Positional parameters: better-sqlite3 binds them without a property lookup per column.
    insertMessage: statement(
      `INSERT INTO messages (conversation_id, seq, id, role, agent, content, created_at, usage, timings, run_id, reasoning)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    listAll: statement('SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq'),
    listNewest: statement('SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?'),
    purgeBatch: statement(
      'DELETE FROM conversations WHERE rowid IN (SELECT rowid FROM conversations WHERE updated_at < ? LIMIT ?)',
    ),
    ping: statement('SELECT 1'),
  };
  // An append's sequence reservation and inserts commit together, or (unknown conversation,
  // duplicate id) none of them does; `appendAll` writes a group commit's appends in one
  // transaction. Built once: better-sqlite3 wraps a function per transaction() call.
  const appendBody = ({ messages, now, createFor }: AppendJob): AppendResult => {
    const documents: AppendResult = new Map();
    for (const [conversationId, group] of groupByConversation(messages)) {
      const created =
        createFor !== undefined &&
        statements.createWithSeq.run(conversationId, createFor, now, now, group.length).changes === 1;
      let lastSeq = group.length;
      if (!created) {
        const reserved = statements.reserveSeq.get(group.length, now, conversationId) as
          { last_seq: number } | undefined;
        if (!reserved) throw unknownConversation(conversationId);
        lastSeq = reserved.last_seq;
      }
      const batch = toMessageDocuments(group, lastSeq - group.length + 1, now);
      for (const document of batch) insertRow(statements.insertMessage, document);
      documents.set(conversationId, batch);
    }
    return documents;
  };
  const append = database.transaction(appendBody);
  const appendAll = database.transaction((jobs: AppendJob[]) => jobs.map(appendBody));
  const appends = new GroupCommit<AppendJob, AppendResult>({ writeAll: appendAll, writeOne: append });
  return { ...statements, appends };
}

function toConversation(row: ConversationRow): Conversation {
  return { id: row.id, userId: row.user_id, createdAt: row.created_at, updatedAt: row.updated_at };
}

/** One message as a row of `messages`, in the insert statement's column order. */
function insertRow(insert: Statement, document: MessageDocument): void {
  insert.run(
    document.conversationId,
    document.seq,
    document.id,
    document.role,
    document.agent ?? null,
    document.content,
    document.createdAt,
    document.usage ? JSON.stringify(document.usage) : null,
    document.timings ? JSON.stringify(document.timings) : null,
    document.runId ?? null,
    document.reasoning ?? null,
  );
}

function fromRow(row: MessageRow): StoredMessage {
  return toStoredMessage({
    id: row.id,
    conversationId: row.conversation_id,
    seq: row.seq,
    role: row.role as MessageDocument['role'],
    content: row.content,
    createdAt: row.created_at,
    agent: (row.agent ?? undefined) as MessageDocument['agent'],
    usage: row.usage ? JSON.parse(row.usage) : undefined,
    timings: row.timings ? JSON.parse(row.timings) : undefined,
    runId: row.run_id ?? undefined,
    reasoning: row.reasoning ?? undefined,
  });
}
