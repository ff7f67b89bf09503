import type { AgentName } from '../agents/agent-name';
import type { Usage } from '../llm/provider';

/**
 * The store port: conversations and their messages, in domain words. Adapters: the embedded
 * SQLite database (default, under DATA_DIR) and MongoDB (when MONGODB_URI is set). One behaviour
 * suite (test/store/store-behaviour.ts) runs against both.
 */

export type MessageRole = 'user' | 'assistant' | 'agent';

export interface StoredMessage {
  id: string;
  conversationId: string;
  role: MessageRole;
  /** Set on agent messages (the intermediate work of host, planner, critic, reporter). */
  agent?: AgentName;
  content: string;
  /** A thinking model's reasoning behind `content`, kept apart: never part of the answer or of later prompts. */
  reasoning?: string;
  createdAt: string;
  usage?: Usage;
  timings?: { waitMs?: number; processMs?: number; totalMs?: number; queueWaitMs?: number };
  /** The run (chat turn) that produced this message. */
  runId?: string;
}

export interface Conversation {
  id: string;
  userId: string;
  createdAt: string;
  updatedAt: string;
}

export interface ConversationWithMessages extends Conversation {
  messages: StoredMessage[];
}

/** Which conversations a retention sweep removes (with all their messages). */
export interface PurgeOptions {
  /** ISO time: conversations last updated before it go. */
  updatedBefore: string;
}

export type NewMessage = Omit<StoredMessage, 'id' | 'createdAt'> & { id?: string; createdAt?: string };

export interface AppendOptions {
  /** The user a missing conversation is created for. */
  createFor?: string;
}

export interface Store {
  /** Opens connections and creates indexes; called once at start. */
  init(): Promise<void>;
  /** Creates the conversation if it does not exist; returns it either way. */
  ensureConversation(id: string, userId: string): Promise<Conversation>;
  getConversation(id: string): Promise<Conversation | null>;
  /**
   * Appends messages in order (one turn's user message, agent messages and answer). With
   * `createFor`, a conversation of theirs that does not exist yet is created first for that user
   * (as ensureConversation), in the same write where the adapter can: a chat whose client learns
   * the conversation id only from the answer (JSON) stores the conversation and its turn in one
   * commit instead of two.
   */
  appendMessages(messages: NewMessage[], options?: AppendOptions): Promise<StoredMessage[]>;
  /** Messages in creation order; `limit` keeps the newest N (still returned oldest first). */
  listMessages(conversationId: string, options?: { limit?: number }): Promise<StoredMessage[]>;
  /**
   * Deletes the conversations last updated before the cutoff, and their messages, in small
   * batches (retention, CONVERSATION_TTL_DAYS); resolves with how many conversations went.
   */
  purgeConversations(options: PurgeOptions): Promise<number>;
  /** A cheap round trip for readiness checks; rejects when the store cannot serve. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
