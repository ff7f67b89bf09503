import fs from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';
import { configSchema } from './schema';
import {
  EndpointsFileError,
  loadEndpointsFile,
  type EndpointConfig,
  type EndpointRoutes,
} from './endpoints-file';
import { KeysFileError, readKeysFile, type CallerKey } from './api-keys';
import type { PriorityClass } from '../api/llm/priority-class';

/** The validated, frozen settings every module receives; nothing else reads process.env. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  logLevel: string;
  /**
   * How far V8 lets the old generation grow past what the last full GC kept, in percent (0 = V8's
   * own heuristic, up to 300 %); applied once at start (api/heap-growth.ts).
   */
  heapGrowingPercent: number;
  llm: {
    provider: 'sim' | 'openai';
    baseUrl?: string;
    apiKey?: string;
    model?: string;
    maxConcurrent: number;
    maxRpm: number;
    maxTpm: number;
    timeoutMs: number;
    queueMax: number;
    /** A whole chat's deadline; past it the chat ends with chat_timeout (0 = none). */
    chatTimeoutMs: number;
    /** Admission control on (default) or off (every chat is admitted: for benchmarks' replays). */
    admission: boolean;
    /** Highest first; classes left out rank after the listed ones (api/llm/priority-class.ts). */
    priorityOrder: PriorityClass[];
    maxOutputTokens: number;
    /** Sent as Ark's `thinking: {type}` on every call; unset = the model's default (nothing sent). */
    thinking?: 'enabled' | 'disabled' | 'auto';
    /** Ark's `stream_options.chunk_include_usage`: cumulative usage on every chunk (a cut stream settles too). */
    chunkIncludeUsage: boolean;
    /** The first-byte timeout before the endpoint's own first bytes are measured (0 = off). */
    firstByteTimeoutMs: number;
    /** The measured first-byte timeout never goes below this. */
    firstByteTimeoutFloorMs: number;
    /** How long a refusal only a person can end (quota, billing, key, model) keeps the endpoint out. */
    unavailableCoolDownMs: number;
    /**
     * The provider endpoints, each with its own model and quota (LLM_ENDPOINTS_FILE); without the
     * file, one endpoint `default` made of the LLM_* settings above.
     */
    endpoints: readonly EndpointConfig[];
    /** Agent → endpoint names in fallback order (every agent → `default` without the file). */
    routes: EndpointRoutes;
    /** LLM_ENDPOINTS_FILE, when set. */
    endpointsFile?: string;
  };
  sim: { latencyMs: number; tokensPerSecond: number };
  sse: {
    maxConcurrent: number;
    heartbeatMs: number;
    queueMax: number;
    resumeGraceMs: number;
    tokenGraceMs: number;
    runLogRetentionMs: number;
    runLogMaxEvents: number;
    /** A listener whose socket stays not-drained this long is ended. */
    slowReaderMs: number;
    /** A listener with more than this many bytes waiting in its socket's buffer is ended. */
    maxBufferedBytes: number;
    /** Tokens that follow a stream's first within this window are written together (0: each at once). */
    tokenBatchMs: number;
  };
  http: {
    /** A request body must arrive in full within this (headers have their own timeout). */
    bodyTimeoutMs: number;
    /** On SIGTERM, running chats may finish for this long; the rest end with `shutting_down`. */
    shutdownGraceMs: number;
  };
  agents: {
    criticMaxRounds: number;
    toolMaxRounds: number;
    /** Reporter drafting while the Critic reviews: `auto` only while the provider has spare capacity. */
    parallel: 'auto' | 'on' | 'off';
    /** Tool calls of one model turn run at once, at most (with `parallel` off: one at a time). */
    toolMaxParallel: number;
  };
  /** The LLM response cache (api/llm/cache): in-process, or in Redis when `redisUrl` is set. */
  llmCache: { enabled: boolean; ttlSeconds: number; maxBytes: number };
  search: {
    provider: 'offline' | 'searxng';
    url?: string;
    maxConcurrent: number;
    maxPerMinute: number;
    cacheTtlSeconds: number;
  };
  mongo: { uri?: string; maxPoolSize: number; minPoolSize: number };
  /** Conversations not updated for this many days are purged (0 = kept forever). */
  conversationTtlDays: number;
  redisUrl?: string;
  /** Browser origins allowed to call the API; empty = same origin only; ['*'] = any. */
  corsOrigins: readonly string[];
  alerts: {
    webhookUrl?: string;
    webhookFormat: 'auto' | 'slack' | 'feishu' | 'dingtalk' | 'json';
    webhookTimeoutMs: number;
    webhookMaxPerHour: number;
    evaluationIntervalMs: number;
    /** How long a condition must hold before it fires (and be gone before it resolves). */
    forMs: number;
    waitP95TargetMs: number;
  };
  /** Prefix of every Redis key Troupe writes (several deployments can share one Redis). */
  redisKeyPrefix: string;
  /** DURABLE_CHATS, RUN_ADOPT_INTERVAL_MS: chats continued by another instance (needs REDIS_URL). */
  durableChats: { enabled: boolean; adoptIntervalMs: number };
  adminToken?: string;
  /** Bearer key → the user (caller) it speaks for; empty = no key required. */
  apiKeys: ReadonlyMap<string, string>;
  /** Bearer key → its caller, priority class and own limits (API_KEYS and API_KEYS_FILE). */
  callerKeys: ReadonlyMap<string, CallerKey>;
  userMaxActiveChats: number;
  /** The OpenAI-compatible gateway (/v1): how long a call may wait for a slot before a 429. */
  gateway: { maxWaitMs: number };
}

/** Settings whose values must never reach a log or a terminal, even when they are malformed. */
// A webhook URL is a credential: its path (Feishu, DingTalk, Slack) is the secret.
const SECRET_SETTINGS = new Set([
  'LLM_API_KEY',
  'ADMIN_TOKEN',
  'API_KEYS',
  'MONGODB_URI',
  'REDIS_URL',
  'ALERT_WEBHOOK_URL',
]);

/** A setting with a bad value; the message is the one line printed before the process exits. */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Reads settings from `env` (the environment merged over `.env` when called by `loadConfig`),
 * validates every one and returns a frozen Config. Throws ConfigError naming the first bad value.
 */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    // An empty variable means "use the default", as in most twelve-factor apps.
    if (value !== undefined && value.trim() !== '') input[key] = value;
  }
  const result = configSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    const name = String(issue.path[0]);
    const shown = SECRET_SETTINGS.has(name)
      ? `<hidden, ${(env[name] ?? '').length} characters>`
      : JSON.stringify(env[name] ?? '');
    throw new ConfigError(`Invalid configuration: ${name}=${shown} — expected ${issue.message}`);
  }
  const raw = result.data;
  if (raw.LLM_PROVIDER === 'openai' && (!raw.LLM_BASE_URL || !raw.LLM_MODEL)) {
    const missing = !raw.LLM_BASE_URL ? 'LLM_BASE_URL' : 'LLM_MODEL';
    throw new ConfigError(
      `Invalid configuration: ${missing}="" — expected a value when LLM_PROVIDER=openai ` +
        '(e.g. LLM_BASE_URL=https://ark.cn-beijing.volces.com/api/v3, LLM_MODEL=<endpoint id>)',
    );
  }
  if (raw.SEARCH_PROVIDER === 'searxng' && !raw.SEARCH_URL) {
    throw new ConfigError(
      'Invalid configuration: SEARCH_URL="" — expected the SearXNG base URL when SEARCH_PROVIDER=searxng',
    );
  }
  if (raw.MONGO_MIN_POOL_SIZE > raw.MONGO_MAX_POOL_SIZE) {
    throw new ConfigError(
      `Invalid configuration: MONGO_MIN_POOL_SIZE=${JSON.stringify(env.MONGO_MIN_POOL_SIZE)} — expected at most MONGO_MAX_POOL_SIZE (${raw.MONGO_MAX_POOL_SIZE})`,
    );
  }
  const setup = raw.LLM_ENDPOINTS_FILE ? endpointsFromFile(raw.LLM_ENDPOINTS_FILE, env) : singleEndpoint(raw);
  const callerKeys = new Map<string, CallerKey>();
  for (const [key, entry] of raw.API_KEYS) callerKeys.set(key, { ...entry, limits: {} });
  if (raw.API_KEYS_FILE) {
    try {
      for (const [key, entry] of readKeysFile(raw.API_KEYS_FILE)) callerKeys.set(key, entry);
    } catch (error) {
      if (!(error instanceof KeysFileError)) throw error;
      throw new ConfigError(
        `Invalid configuration: API_KEYS_FILE=${JSON.stringify(raw.API_KEYS_FILE)} — ${error.message}`,
      );
    }
  }
  const config: Config = {
    port: raw.PORT,
    host: raw.HOST,
    dataDir: raw.DATA_DIR,
    logLevel: raw.LOG_LEVEL,
    heapGrowingPercent: raw.HEAP_GROWING_PERCENT,
    llm: {
      provider: raw.LLM_PROVIDER,
      baseUrl: raw.LLM_BASE_URL,
      apiKey: raw.LLM_API_KEY,
      model: raw.LLM_MODEL,
      maxConcurrent: raw.LLM_MAX_CONCURRENT,
      maxRpm: raw.LLM_MAX_RPM,
      maxTpm: raw.LLM_MAX_TPM,
      timeoutMs: raw.LLM_TIMEOUT,
      queueMax: raw.LLM_QUEUE_MAX,
      chatTimeoutMs: raw.CHAT_TIMEOUT_MS,
      admission: raw.LLM_ADMISSION === 'on',
      priorityOrder: raw.LLM_PRIORITY_ORDER,
      maxOutputTokens: raw.LLM_MAX_OUTPUT_TOKENS,
      ...(raw.LLM_THINKING ? { thinking: raw.LLM_THINKING } : {}),
      chunkIncludeUsage: raw.LLM_CHUNK_INCLUDE_USAGE === 'on',
      firstByteTimeoutMs: raw.LLM_FIRST_BYTE_TIMEOUT_MS,
      firstByteTimeoutFloorMs: raw.LLM_FIRST_BYTE_TIMEOUT_FLOOR_MS,
      unavailableCoolDownMs: raw.LLM_UNAVAILABLE_COOLDOWN_MS,
      endpoints: setup.endpoints,
      routes: setup.routes,
      endpointsFile: raw.LLM_ENDPOINTS_FILE,
    },
    sim: { latencyMs: raw.SIM_LATENCY_MS, tokensPerSecond: raw.SIM_TOKENS_PER_S },
    sse: {
      maxConcurrent: raw.SSE_MAX_CONCURRENT,
      heartbeatMs: raw.SSE_HEARTBEAT_MS,
      queueMax: raw.SSE_QUEUE_MAX,
      resumeGraceMs: raw.SSE_RESUME_GRACE_MS,
      tokenGraceMs: raw.SSE_TOKEN_GRACE_MS,
      runLogRetentionMs: raw.RUN_LOG_RETENTION_MS,
      runLogMaxEvents: raw.RUN_LOG_MAX_EVENTS,
      slowReaderMs: raw.SSE_SLOW_READER_MS,
      maxBufferedBytes: raw.SSE_MAX_BUFFERED_BYTES,
      tokenBatchMs: raw.SSE_TOKEN_BATCH_MS,
    },
    http: { bodyTimeoutMs: raw.REQUEST_BODY_TIMEOUT_MS, shutdownGraceMs: raw.SHUTDOWN_GRACE_MS },
    agents: {
      criticMaxRounds: raw.CRITIC_MAX_ROUNDS,
      toolMaxRounds: raw.TOOL_MAX_ROUNDS,
      parallel: raw.AGENT_PARALLEL,
      toolMaxParallel: raw.TOOL_MAX_PARALLEL,
    },
    llmCache: {
      enabled: raw.LLM_CACHE === 'on',
      ttlSeconds: raw.LLM_CACHE_TTL,
      maxBytes: raw.LLM_CACHE_MAX_BYTES,
    },
    search: {
      provider: raw.SEARCH_PROVIDER,
      url: raw.SEARCH_URL,
      maxConcurrent: raw.SEARCH_MAX_CONCURRENT,
      maxPerMinute: raw.SEARCH_MAX_RPM,
      cacheTtlSeconds: raw.SEARCH_CACHE_TTL,
    },
    mongo: {
      uri: raw.MONGODB_URI,
      maxPoolSize: raw.MONGO_MAX_POOL_SIZE,
      minPoolSize: raw.MONGO_MIN_POOL_SIZE,
    },
    conversationTtlDays: raw.CONVERSATION_TTL_DAYS,
    redisUrl: raw.REDIS_URL,
    corsOrigins: raw.CORS_ORIGINS,
    alerts: {
      webhookUrl: raw.ALERT_WEBHOOK_URL,
      webhookFormat: raw.ALERT_WEBHOOK_FORMAT,
      webhookTimeoutMs: raw.ALERT_WEBHOOK_TIMEOUT_MS,
      webhookMaxPerHour: raw.ALERT_WEBHOOK_MAX_PER_HOUR,
      evaluationIntervalMs: raw.ALERT_EVAL_INTERVAL_MS,
      forMs: raw.ALERT_FOR_MS,
      waitP95TargetMs: raw.ALERT_WAIT_P95_MS,
    },
    redisKeyPrefix: raw.REDIS_KEY_PREFIX,
    durableChats: { enabled: raw.DURABLE_CHATS === 'on', adoptIntervalMs: raw.RUN_ADOPT_INTERVAL_MS },
    adminToken: raw.ADMIN_TOKEN,
    apiKeys: new Map([...callerKeys].map(([key, entry]) => [key, entry.caller])),
    callerKeys,
    userMaxActiveChats: raw.USER_MAX_ACTIVE_CHATS,
    gateway: { maxWaitMs: raw.GATEWAY_MAX_WAIT_MS },
  };
  return deepFreeze(config);
}

/** The endpoints file's setup; a bad file is a ConfigError (one line naming the field). */
function endpointsFromFile(file: string, env: Record<string, string | undefined>) {
  try {
    return loadEndpointsFile(file, env);
  } catch (error) {
    if (error instanceof EndpointsFileError) throw new ConfigError(error.message);
    throw error;
  }
}

/** Today's single-endpoint settings as one endpoint named `default`, used by every agent. */
function singleEndpoint(raw: ReturnType<typeof configSchema.parse>): {
  endpoints: EndpointConfig[];
  routes: EndpointRoutes;
} {
  const endpoint: EndpointConfig = {
    name: 'default',
    provider: raw.LLM_PROVIDER,
    baseUrl: raw.LLM_BASE_URL,
    apiKey: raw.LLM_API_KEY,
    // The cache keyed on this before endpoints existed: the provider's name when no model is set.
    model: raw.LLM_MODEL ?? raw.LLM_PROVIDER,
    maxConcurrent: raw.LLM_MAX_CONCURRENT,
    maxRpm: raw.LLM_MAX_RPM,
    maxTpm: raw.LLM_MAX_TPM,
  };
  const route = [endpoint.name];
  return {
    endpoints: [endpoint],
    routes: { host: route, planner: route, critic: route, reporter: route, default: route },
  };
}

/** process.env over `.env` in the working directory (dotenv never overrides real variables). */
export function loadConfig(cwd = process.cwd()): Config {
  const fromFile: Record<string, string> = {};
  const envFile = path.join(cwd, '.env');
  if (fs.existsSync(envFile)) Object.assign(fromFile, dotenv.parse(fs.readFileSync(envFile)));
  return parseConfig({ ...fromFile, ...process.env });
}

/** Overrides for tests: the defaults plus the given variables, with no .env file involved. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return parseConfig({ LOG_LEVEL: 'silent', ...overrides });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof Map)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
