import fs from 'node:fs';
import path from 'node:path';
import Datastore from '@seald-io/nedb';
import { wallClock, type Clock, type TimerHandle } from '../clock';
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
import type { Conversation, NewMessage, Store, StoredMessage } from './store';

export interface EmbeddedStoreOptions {
  /** Directory holding conversations.db and messages.db; created when missing. */
  directory: string;
  clock?: Clock;
  /**
   * How often the append-only data files are rewritten to their live documents (only when
   * something was written since the last time); 0 turns it off. The files are compacted on
   * load and on close either way.
   */
  compactionIntervalMs?: number;
  /** Told about a failed background compaction (the next one retries). */
  onCompactionError?: (error: unknown) => void;
}

const DEFAULT_COMPACTION_INTERVAL_MS = 10 * 60_000;

/**
 * The default store: @seald-io/nedb collections persisted under a directory, with the same
 * document model and query style as MongoStore. One process owns a directory at a time.
 */
export class EmbeddedStore implements Store {
  private readonly directory: string;
  private readonly clock: Clock;
  private readonly compactionIntervalMs: number;
  private readonly onCompactionError: (error: unknown) => void;
  private conversations?: Datastore<ConversationDocument>;
  private messages?: Datastore<MessageDocument>;
  private state: 'new' | 'opening' | 'open' | 'closed' = 'new';
  private opening?: Promise<void>;
  private compactionTimer?: TimerHandle;
  private writtenSinceCompaction = false;
  /** Operations in progress, so close() compacts only after they have written. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(options: EmbeddedStoreOptions) {
    this.directory = path.resolve(options.directory);
    // Its timestamps are read by people: wall time, not the monotonic scheduler time.
    this.clock = options.clock ?? wallClock;
    this.compactionIntervalMs = options.compactionIntervalMs ?? DEFAULT_COMPACTION_INTERVAL_MS;
    this.onCompactionError = options.onCompactionError ?? (() => {});
  }

  /** Creates the directory, loads (and thereby compacts) both files and ensures the indexes. */
  init(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new StoreStateError('EmbeddedStore', 'closed'));
    this.opening ??= this.open();
    return this.opening;
  }

  async ensureConversation(id: string, userId: string): Promise<Conversation> {
    return this.track(async () => {
      const { conversations } = this.collections();
      const existing = await conversations.findOneAsync({ id });
      if (existing) return toConversation(existing);
      try {
        const now = this.nowIso();
        const created = await conversations.insertAsync(newConversationDocument(id, userId, now));
        this.writtenSinceCompaction = true;
        return toConversation(created);
      } catch (error) {
        // A concurrent call created it between our read and our insert: theirs stands.
        if (!isUniqueViolation(error)) throw error;
        const winner = await conversations.findOneAsync({ id });
        if (!winner) throw error;
        return toConversation(winner);
      }
    });
  }

  async getConversation(id: string): Promise<Conversation | null> {
    return this.track(async () => {
      const document = await this.collections().conversations.findOneAsync({ id });
      return document ? toConversation(document) : null;
    });
  }

  async appendMessages(messages: NewMessage[]): Promise<StoredMessage[]> {
    if (messages.length === 0) return [];
    return this.track(async () => {
      const { conversations, messages: messageCollection } = this.collections();
      const now = this.nowIso();
      const documents = new Map<string, MessageDocument[]>();
      for (const [conversationId, group] of groupByConversation(messages)) {
        // One update is one step of nedb's executor, so this reservation is atomic even with many
        // appends in flight: each gets its own contiguous block of sequence numbers.
        const { affectedDocuments } = await conversations.updateAsync(
          { id: conversationId },
          { $inc: { lastSeq: group.length }, $set: { updatedAt: now } },
          { returnUpdatedDocs: true },
        );
        if (!affectedDocuments) throw unknownConversation(conversationId);
        const reserved = affectedDocuments as ConversationDocument;
        documents.set(conversationId, toMessageDocuments(group, reserved.lastSeq - group.length + 1, now));
      }
      this.writtenSinceCompaction = true;
      await messageCollection.insertAsync([...documents.values()].flat());
      return inInputOrder(messages, documents);
    });
  }

  async listMessages(conversationId: string, options: { limit?: number } = {}): Promise<StoredMessage[]> {
    return this.track(async () => {
      const { messages } = this.collections();
      const limit = normaliseLimit(options.limit);
      if (limit === 0) return [];
      if (limit === undefined) {
        const all = (await messages
          .findAsync({ conversationId })
          .sort({ seq: 1 })) as unknown as MessageDocument[];
        return all.map(toStoredMessage);
      }
      const newest = (await messages
        .findAsync({ conversationId })
        .sort({ seq: -1 })
        .limit(limit)) as unknown as MessageDocument[];
      return newest.reverse().map(toStoredMessage);
    });
  }

  async ping(): Promise<void> {
    return this.track(async () => {
      const { conversations } = this.collections();
      try {
        await fs.promises.access(this.directory, fs.constants.W_OK);
      } catch (error) {
        throw new StoreUnavailableError(`Embedded store directory ${this.directory} is not writable`, {
          cause: error,
        });
      }
      // A round trip through nedb's executor: it answers only when queued writes are not stuck.
      await conversations.countAsync({ id: '' });
    });
  }

  /** Waits for operations in progress, then compacts both files. Further calls reject. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpening = this.opening;
    this.state = 'closed';
    this.stopCompactionTimer();
    if (!wasOpening) return;
    try {
      await wasOpening;
    } catch {
      return; // never opened: nothing to flush
    }
    await Promise.allSettled([...this.inFlight]);
    await this.compact();
  }

  private async open(): Promise<void> {
    this.state = 'opening';
    try {
      await fs.promises.mkdir(this.directory, { recursive: true });
      const conversations = new Datastore<ConversationDocument>({
        filename: path.join(this.directory, `${CONVERSATIONS}.db`),
      });
      const messages = new Datastore<MessageDocument>({
        filename: path.join(this.directory, `${MESSAGES}.db`),
      });
      // Loading rewrites each file to its live documents, so every start begins compacted.
      await Promise.all([conversations.loadDatabaseAsync(), messages.loadDatabaseAsync()]);
      await conversations.ensureIndexAsync({ fieldName: 'id', unique: true });
      await messages.ensureIndexAsync({ fieldName: 'id', unique: true });
      // nedb uses a compound index only when a query names all its fields, so listing by
      // conversation needs the single-field index too; the compound one keeps (conversationId, seq) unique.
      await messages.ensureIndexAsync({ fieldName: 'conversationId' });
      await messages.ensureIndexAsync({ fieldName: ['conversationId', 'seq'], unique: true });
      this.conversations = conversations;
      this.messages = messages;
    } catch (error) {
      if (this.state === 'opening') this.state = 'new';
      this.opening = undefined;
      throw new StoreUnavailableError(
        `Embedded store could not open ${this.directory}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    if (this.state !== 'opening') return; // closed while opening
    this.state = 'open';
    this.startCompactionTimer();
  }

  private collections(): {
    conversations: Datastore<ConversationDocument>;
    messages: Datastore<MessageDocument>;
  } {
    if (this.state === 'closed') throw new StoreStateError('EmbeddedStore', 'closed');
    if (this.state !== 'open' || !this.conversations || !this.messages) {
      throw new StoreStateError('EmbeddedStore', 'not initialised');
    }
    return { conversations: this.conversations, messages: this.messages };
  }

  private track<T>(operation: () => Promise<T>): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = operation();
    } catch (error) {
      return Promise.reject(error);
    }
    this.inFlight.add(promise);
    const forget = () => this.inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  private async compact(): Promise<void> {
    if (!this.conversations || !this.messages) return;
    this.writtenSinceCompaction = false;
    await Promise.all([this.conversations.compactDatafileAsync(), this.messages.compactDatafileAsync()]);
  }

  private startCompactionTimer(): void {
    if (this.compactionIntervalMs <= 0 || this.state !== 'open') return;
    // Through the clock rather than nedb's setAutocompactionInterval: that timer is not unref'd
    // (it would keep a shutting-down process alive) and tests could not drive it.
    this.compactionTimer = this.clock.setTimeout(() => {
      this.compactionTimer = undefined;
      if (!this.writtenSinceCompaction || this.state !== 'open') {
        this.startCompactionTimer();
        return;
      }
      this.compact()
        .catch((error: unknown) => {
          this.writtenSinceCompaction = true;
          this.onCompactionError(error);
        })
        .finally(() => this.startCompactionTimer());
    }, this.compactionIntervalMs);
  }

  private stopCompactionTimer(): void {
    if (this.compactionTimer) this.clock.clearTimeout(this.compactionTimer);
    this.compactionTimer = undefined;
  }

  private nowIso(): string {
    return new Date(this.clock.now()).toISOString();
  }
}

function isUniqueViolation(error: unknown): boolean {
  return (error as { errorType?: unknown } | null)?.errorType === 'uniqueViolated';
}
