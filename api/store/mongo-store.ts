import { MongoClient, MongoServerError, type Collection, type Db } from 'mongodb';
import { wallClock, type Clock } from '../clock';
import {
  CONVERSATIONS,
  MESSAGES,
  StoreStateError,
  StoreUnavailableError,
  groupByConversation,
  inInputOrder,
  newConversationDocument,
  normaliseLimit,
  toConversation,
  toMessageDocuments,
  toStoredMessage,
  unknownConversation,
  type ConversationDocument,
  type MessageDocument,
} from './documents';
import type { AppendOptions, Conversation, NewMessage, PurgeOptions, Store, StoredMessage } from './store';

export interface MongoStoreOptions {
  /** A mongodb:// or mongodb+srv:// connection string (MONGODB_URI). */
  uri: string;
  maxPoolSize: number;
  minPoolSize: number;
  /** The database; default: the one named in the URI, else `troupe`. */
  databaseName?: string;
  /**
   * How long init() and each operation wait for a reachable server before failing. A value in the
   * URI wins; default 5 s, so a dead server fails start-up quickly and clearly.
   */
  serverSelectionTimeoutMs?: number;
  clock?: Clock;
}

const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 5000;
const DEFAULT_DATABASE = 'troupe';
const DUPLICATE_KEY = 11000;
const PURGE_BATCH = 500;
/** Reads never expose the database's own `_id`. */
const WITHOUT_ID = { projection: { _id: 0 } } as const;

/**
 * The store on MongoDB through the official driver: collections `conversations` and `messages`
 * with the same documents as SqliteStore, indexes created at init. Safe to share one database
 * between several Troupe instances (sequence numbers are reserved atomically on the server).
 */
export class MongoStore implements Store {
  private readonly options: MongoStoreOptions;
  private readonly clock: Clock;
  private client?: MongoClient;
  private database?: Db;
  private conversations?: Collection<ConversationDocument>;
  private messages?: Collection<MessageDocument>;
  private opening?: Promise<void>;
  private closed = false;

  constructor(options: MongoStoreOptions) {
    this.options = options;
    // Its timestamps are read by people: wall time, not the monotonic scheduler time.
    this.clock = options.clock ?? wallClock;
  }

  /** Connects (failing after the server-selection timeout when no server answers) and creates the indexes. */
  init(): Promise<void> {
    if (this.closed) return Promise.reject(new StoreStateError('MongoStore', 'closed'));
    this.opening ??= this.open().catch((error: unknown) => {
      this.opening = undefined;
      throw error;
    });
    return this.opening;
  }

  async ensureConversation(id: string, userId: string): Promise<Conversation> {
    const { conversations } = this.collections();
    const filter = { id };
    // The filter's `id` goes into an upserted document by itself; naming it again is redundant.
    const { id: _filterId, ...insert } = newConversationDocument(id, userId, this.nowIso());
    try {
      const document = await conversations.findOneAndUpdate(
        filter,
        { $setOnInsert: insert },
        { upsert: true, returnDocument: 'after', ...WITHOUT_ID },
      );
      if (document) return toConversation(document);
    } catch (error) {
      // Two concurrent upserts of the same id: the unique index refuses the loser; the winner's stands.
      if (!(error instanceof MongoServerError && error.code === DUPLICATE_KEY)) throw error;
    }
    const existing = await conversations.findOne(filter, WITHOUT_ID);
    if (!existing) throw new Error(`Conversation ${id} vanished while being created`);
    return toConversation(existing);
  }

  async getConversation(id: string): Promise<Conversation | null> {
    const document = await this.collections().conversations.findOne({ id }, WITHOUT_ID);
    return document ? toConversation(document) : null;
  }

  async appendMessages(messages: NewMessage[], options: AppendOptions = {}): Promise<StoredMessage[]> {
    if (messages.length === 0) return [];
    // No multi-document transaction here (a standalone server has none): the conversation is
    // upserted first, as ensureConversation does; a failed append then leaves it empty, as before.
    if (options.createFor !== undefined) {
      for (const conversationId of new Set(messages.map((message) => message.conversationId)))
        await this.ensureConversation(conversationId, options.createFor);
    }
    const { conversations, messages: messageCollection } = this.collections();
    const now = this.nowIso();
    const documents = new Map<string, MessageDocument[]>();
    for (const [conversationId, group] of groupByConversation(messages)) {
      // $inc on the server hands every append (from any instance) its own contiguous block.
      const reserved = await conversations.findOneAndUpdate(
        { id: conversationId },
        { $inc: { lastSeq: group.length }, $set: { updatedAt: now } },
        { returnDocument: 'after', projection: { _id: 0, lastSeq: 1 } },
      );
      if (!reserved) throw unknownConversation(conversationId);
      documents.set(conversationId, toMessageDocuments(group, reserved.lastSeq - group.length + 1, now));
    }
    // insertMany adds `_id` to the objects it is given: hand it copies so ours stay clean.
    const inserts = [...documents.values()].flat().map((document) => ({ ...document }));
    await messageCollection.insertMany(inserts, { ordered: true });
    return inInputOrder(messages, documents);
  }

  async listMessages(conversationId: string, options: { limit?: number } = {}): Promise<StoredMessage[]> {
    const { messages } = this.collections();
    const limit = normaliseLimit(options.limit);
    if (limit === 0) return [];
    if (limit === undefined) {
      const all = await messages.find({ conversationId }, WITHOUT_ID).sort({ seq: 1 }).toArray();
      return all.map(toStoredMessage);
    }
    const newest = await messages
      .find({ conversationId }, WITHOUT_ID)
      .sort({ seq: -1 })
      .limit(limit)
      .toArray();
    return newest.reverse().map(toStoredMessage);
  }

  async purgeConversations(options: PurgeOptions): Promise<number> {
    const { conversations, messages } = this.collections();
    let purged = 0;
    for (;;) {
      // By batches of ids, messages first: an interrupted purge leaves no message without its conversation.
      const batch = await conversations
        .find({ updatedAt: { $lt: options.updatedBefore } }, { projection: { _id: 0, id: 1 } })
        .limit(PURGE_BATCH)
        .toArray();
      if (batch.length === 0) return purged;
      const ids = batch.map((document) => document.id);
      await messages.deleteMany({ conversationId: { $in: ids } });
      const { deletedCount } = await conversations.deleteMany({
        id: { $in: ids },
        updatedAt: { $lt: options.updatedBefore },
      });
      purged += deletedCount;
      if (batch.length < PURGE_BATCH) return purged;
    }
  }

  async ping(): Promise<void> {
    const database = this.collections().database;
    try {
      await database.command({ ping: 1 });
    } catch (error) {
      throw new StoreUnavailableError(`MongoDB ping failed: ${describe(error)}`, { cause: error });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const opening = this.opening;
    if (opening) await opening.catch(() => {});
    await this.client?.close();
  }

  private async open(): Promise<void> {
    const { uri, maxPoolSize, minPoolSize } = this.options;
    const where = redact(uri);
    let client: MongoClient;
    try {
      client = new MongoClient(uri, {
        maxPoolSize,
        minPoolSize,
        // The driver lets the options object override the URI; here the URI should win.
        serverSelectionTimeoutMS: /[?&]serverSelectionTimeoutMS=/i.test(uri)
          ? undefined
          : (this.options.serverSelectionTimeoutMs ?? DEFAULT_SERVER_SELECTION_TIMEOUT_MS),
        appName: 'troupe',
      });
    } catch (error) {
      throw new StoreUnavailableError(
        `MONGODB_URI ${where} is not a valid connection string: ${describe(error)}`,
        {
          cause: error,
        },
      );
    }
    this.client = client;
    try {
      await client.connect();
      const database = client.db(this.options.databaseName ?? databaseFromUri(uri) ?? DEFAULT_DATABASE);
      const conversations = database.collection<ConversationDocument>(CONVERSATIONS);
      const messages = database.collection<MessageDocument>(MESSAGES);
      await conversations.createIndexes([
        { key: { id: 1 }, name: 'id_unique', unique: true },
        // Retention finds expired conversations by their last update (stored as ISO text, so a
        // periodic delete rather than a TTL index, which needs BSON dates).
        { key: { updatedAt: 1 }, name: 'updated_at' },
      ]);
      await messages.createIndexes([
        { key: { id: 1 }, name: 'id_unique', unique: true },
        { key: { conversationId: 1, seq: 1 }, name: 'conversation_seq_unique', unique: true },
      ]);
      this.database = database;
      this.conversations = conversations;
      this.messages = messages;
    } catch (error) {
      // Release the pool (and its minPoolSize connection attempts) so a failed start can exit.
      await client.close().catch(() => {});
      this.client = undefined;
      throw new StoreUnavailableError(
        `MongoDB at ${where} is unreachable or refused to initialise: ${describe(error)}`,
        {
          cause: error,
        },
      );
    }
  }

  private collections(): {
    database: Db;
    conversations: Collection<ConversationDocument>;
    messages: Collection<MessageDocument>;
  } {
    // A closed MongoClient would silently reconnect on the next operation; refuse instead.
    if (this.closed) throw new StoreStateError('MongoStore', 'closed');
    if (!this.database || !this.conversations || !this.messages) {
      throw new StoreStateError('MongoStore', 'not initialised');
    }
    return { database: this.database, conversations: this.conversations, messages: this.messages };
  }

  private nowIso(): string {
    return new Date(this.clock.now()).toISOString();
  }
}

/** The connection string with any password replaced, safe for logs and error messages. */
export function redact(uri: string): string {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/)([^@/]*)@/i, (_match, scheme: string, credentials: string) => {
    const user = credentials.split(':')[0];
    return `${scheme}${user}:***@`;
  });
}

/** The database named in the URI's path, if any (`mongodb://host/name?…`). */
function databaseFromUri(uri: string): string | undefined {
  const match = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]*)/i.exec(uri);
  const name = match?.[1] ? decodeURIComponent(match[1]) : '';
  return name === '' ? undefined : name;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
