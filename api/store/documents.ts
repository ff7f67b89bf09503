import { v7 as timeOrderedId } from 'uuid';
import { AppError } from '../errors';
import type { Conversation, NewMessage, StoredMessage } from './store';

/**
 * The document model both adapters share (embedded and MongoDB), so data and queries look the same
 * whichever one runs. Collections `conversations` and `messages`; `id` is ours (unique), `_id`
 * belongs to the database and never leaves the adapter.
 */

/** A conversation as stored: `lastSeq` is the last message sequence number handed out. */
export interface ConversationDocument extends Conversation {
  lastSeq: number;
}

/**
 * A message as stored. `seq` is per conversation and strictly increasing in append order; it, not
 * `createdAt` (which ties within a millisecond), orders a conversation's messages.
 */
export interface MessageDocument extends StoredMessage {
  seq: number;
}

export const CONVERSATIONS = 'conversations';
export const MESSAGES = 'messages';

export function newConversationDocument(id: string, userId: string, now: string): ConversationDocument {
  return { id, userId, createdAt: now, updatedAt: now, lastSeq: 0 };
}

/** The domain view of a stored conversation (drops `_id` and `lastSeq`). */
export function toConversation(document: ConversationDocument): Conversation {
  return {
    id: document.id,
    userId: document.userId,
    createdAt: document.createdAt,
    updatedAt: document.updatedAt,
  };
}

/** The domain view of a stored message (drops `_id` and `seq`, and fields that were never set). */
export function toStoredMessage(document: MessageDocument): StoredMessage {
  const message: StoredMessage = {
    id: document.id,
    conversationId: document.conversationId,
    role: document.role,
    content: document.content,
    createdAt: document.createdAt,
  };
  if (document.agent != null) message.agent = document.agent;
  if (document.reasoning != null) message.reasoning = document.reasoning;
  if (document.usage != null) message.usage = document.usage;
  if (document.timings != null) message.timings = document.timings;
  if (document.runId != null) message.runId = document.runId;
  return message;
}

/**
 * Builds the documents for one conversation's share of an append, numbered from `firstSeq`.
 * Unset optional fields are left out: the MongoDB driver would otherwise store them as null.
 */
export function toMessageDocuments(messages: NewMessage[], firstSeq: number, now: string): MessageDocument[] {
  return messages.map((message, index) => {
    const document: MessageDocument = {
      // Time-ordered (UUIDv7), as new conversation ids: appended at the end of the id index.
      id: message.id ?? timeOrderedId(),
      conversationId: message.conversationId,
      seq: firstSeq + index,
      role: message.role,
      content: message.content,
      createdAt: message.createdAt ?? now,
    };
    if (message.agent !== undefined) document.agent = message.agent;
    if (message.reasoning !== undefined) document.reasoning = message.reasoning;
    if (message.usage !== undefined) document.usage = { ...message.usage };
    if (message.timings !== undefined) document.timings = withoutUndefined(message.timings);
    if (message.runId !== undefined) document.runId = message.runId;
    return document;
  });
}

/** An append's messages grouped by conversation, each group in the caller's order. */
export function groupByConversation(messages: NewMessage[]): Map<string, NewMessage[]> {
  const groups = new Map<string, NewMessage[]>();
  for (const message of messages) {
    const group = groups.get(message.conversationId);
    if (group) group.push(message);
    else groups.set(message.conversationId, [message]);
  }
  return groups;
}

/**
 * Restores the caller's order after per-conversation inserts: messages come back in the order they
 * were given, whichever conversation they belong to.
 */
export function inInputOrder(
  messages: NewMessage[],
  documents: Map<string, MessageDocument[]>,
): StoredMessage[] {
  const cursors = new Map<string, number>();
  return messages.map((message) => {
    const index = cursors.get(message.conversationId) ?? 0;
    cursors.set(message.conversationId, index + 1);
    return toStoredMessage(documents.get(message.conversationId)![index]);
  });
}

/**
 * The `limit` of listMessages as a count: undefined means all; anything below 1 means none (a
 * database's own `limit(0)` would mean "no limit", the opposite).
 */
export function normaliseLimit(limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  if (!Number.isFinite(limit)) return limit > 0 ? undefined : 0;
  return Math.max(0, Math.floor(limit));
}

export function unknownConversation(conversationId: string): AppError {
  return new AppError(
    'not_found',
    `Conversation ${conversationId} does not exist; ensure it before appending`,
  );
}

/** A store used before init() or after close(): a programming error, reported as such. */
export class StoreStateError extends Error {
  readonly code = 'store_not_open';
  constructor(adapter: string, state: 'not initialised' | 'closed') {
    super(`${adapter} is ${state}${state === 'not initialised' ? '; call init() first' : ''}`);
    this.name = 'StoreStateError';
  }
}

/** The store's backing service cannot be reached or opened (init and ping reject with it). */
export class StoreUnavailableError extends Error {
  readonly code = 'store_unavailable';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'StoreUnavailableError';
  }
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}
