import os from 'node:os';
import type Redis from 'ioredis';
import type { Config } from '../../config';
import type { Clock } from '../clock';
import { Aimd } from '../llm/aimd';
import { InMemoryLimiter } from '../llm/limiter';
import { FailSafeLimiter, type LimiterMode } from '../llm/redis/fail-safe-limiter';
import { QuotaShare } from '../llm/redis/quota-share';
import { RedisLimiter } from '../llm/redis/redis-limiter';
import type { ClusterStarts } from '../llm/redis/redis-limiter-options';
import { SharedAimd } from '../llm/redis/shared-aimd';
import type { SchedulerLogger } from '../llm/scheduler-events';
import type { ServiceSample } from '../llm/line-meter';
import { AdmissionNews } from './admission-news';
import { ClusterControl, type ControlCommand } from './cluster-control';
import { InstanceRegistry, type LiveFigures } from './instance-registry';
import { leaseFigures, type LeaseFigures } from './lease-figures';
import { newInstanceId } from '../redis/instance-id';
import { createRedisConnection, duplicateForSubscribing } from '../redis/redis-connection';

/**
 * Builds the parts an instance shares through Redis (REDIS_URL set): the connections, the shared
 * limiter behind its fail-safe, the shared AIMD, the instance registry and the operators' control
 * channel. Part of the composition root: each part is built apart here and handed the others.
 */
export interface Cluster {
  instanceId: string;
  /** The process's commands connection: the run events, tool limits and caches use it too. */
  redis: Redis;
  limiter: FailSafeLimiter;
  aimd: SharedAimd;
  registry: InstanceRegistry;
  control: ClusterControl;
  /** Late chats and completed chats' service, told to and heard from the other instances. */
  admissionNews: AdmissionNews;
  /** Leases held against calls running, here and over the cluster (status, metrics). */
  leases(): LeaseFigures;
  /**
   * The shared quota of one more provider endpoint (LLM_ENDPOINTS_FILE): its own limiter, behind
   * its own fail-safe, and its own AIMD, under `<prefix>endpoint:<name>:`.
   */
  endpointLimiter(endpoint: EndpointLimits): Promise<{ limiter: FailSafeLimiter; aimd: SharedAimd }>;
  /** Starts heartbeating and listening for operator commands (once the scheduler exists). */
  start(deps: { figures: () => LiveFigures; apply: (command: ControlCommand) => void }): Promise<void>;
  close(): Promise<void>;
}

/** An endpoint's name and quota (config/endpoints-file.ts). */
export interface EndpointLimits {
  name: string;
  maxConcurrent: number;
  maxRpm: number;
  maxTpm: number;
}

export interface CreateClusterOptions {
  config: Pick<Config, 'llm' | 'redisUrl' | 'redisKeyPrefix'>;
  clock: Clock;
  logger?: SchedulerLogger & { debug?: (object: object, message: string) => void };
  /** The shared limits changed mode (degraded, back): dispatch should look again. */
  onLimiterModeChange?: (mode: LimiterMode) => void;
  /** A slot was released somewhere while an instance waited for one: dispatch should look again. */
  onSlotReleased?: () => void;
  /** Every start's round trip to Redis, ms (the metrics' dispatch-path histogram). */
  onDispatchRoundTrip?: (ms: number) => void;
  /**
   * Every start of the cluster's at `endpoint` (`default` without LLM_ENDPOINTS_FILE), as the load
   * channel announces it: the run ledger measures the cluster's start gaps from it.
   */
  onClusterStarts?: (endpoint: string, starts: ClusterStarts) => void;
  /** A chat completed on another instance, with its service time and calls (AdmissionNews). */
  onServedElsewhere?: (served: ServiceSample) => void;
  /** Tests: a shorter lease, heartbeat, probe… */
  tuning?: {
    leaseMs?: number;
    renewEveryMs?: number;
    heartbeatMs?: number;
    instanceTtlMs?: number;
    probeEveryMs?: number;
    commandTimeoutMs?: number;
  };
}

export async function createCluster(options: CreateClusterOptions): Promise<Cluster> {
  const { config, clock, logger } = options;
  const llm = config.llm;
  const tuning = options.tuning ?? {};
  const instanceId = newInstanceId();
  const onError = (error: Error) => logger?.debug?.({ error: error.message }, 'Redis connection error');
  const redis = createRedisConnection(config.redisUrl!, {
    name: `troupe:${instanceId}`,
    commandTimeoutMs: tuning.commandTimeoutMs,
    lazy: true,
    onError,
  });
  const subscriber = duplicateForSubscribing(redis);
  let startFailure: unknown;
  await Promise.all([
    redis.connect().catch((error: unknown) => {
      startFailure = error;
    }),
    subscriber.connect().catch(() => undefined),
  ]);

  const redisLimiter = new RedisLimiter({
    redis,
    keyPrefix: config.redisKeyPrefix,
    instanceId,
    clock,
    maxConcurrent: llm.maxConcurrent,
    maxRpm: llm.maxRpm,
    maxTpm: llm.maxTpm,
    leaseMs: tuning.leaseMs,
    renewEveryMs: tuning.renewEveryMs,
    onRoundTrip: options.onDispatchRoundTrip,
    // Without LLM_ENDPOINTS_FILE this limiter is the one endpoint's (`default`).
    onClusterStarts: (starts) => options.onClusterStarts?.(llm.endpoints[0]?.name ?? 'default', starts),
  });
  const registry = new InstanceRegistry({
    redis,
    keyPrefix: config.redisKeyPrefix,
    instanceId,
    host: os.hostname(),
    clock,
    heartbeatMs: tuning.heartbeatMs,
    ttlMs: tuning.instanceTtlMs,
    onClusterLoad: (load) => {
      redisLimiter.observe(load);
      // The heartbeat also brought the others' figures: are they all back after an outage?
      limiter.checkRecovery();
    },
    // A failed heartbeat means Redis is gone: fall back now, not at the next start.
    onError: (error) => limiter.reportFailure(error),
  });
  const localAimd = new Aimd({
    clock,
    maxConcurrent: llm.maxConcurrent,
    maxRpm: llm.maxRpm,
    maxTpm: llm.maxTpm,
  });
  const share = new QuotaShare({ shared: redisLimiter, local: localAimd, instances: () => registry.count() });
  const fallback = new InMemoryLimiter({
    clock,
    maxConcurrent: llm.maxConcurrent,
    maxRpm: llm.maxRpm,
    maxTpm: llm.maxTpm,
    aimd: share,
  });
  const limiter = new FailSafeLimiter({
    shared: redisLimiter,
    local: fallback,
    share,
    clock,
    callTimeoutMs: llm.timeoutMs,
    logger,
    probeEveryMs: tuning.probeEveryMs,
    onModeChange: options.onLimiterModeChange,
    othersBackSince: (since) => registry.othersBackSince(since),
  });
  const aimd = new SharedAimd({ shared: redisLimiter, local: localAimd });
  if (startFailure !== undefined) limiter.reportFailure(startFailure);
  // Wake, don't poll (docs/ARCHITECTURE.md §7): a release on another instance wakes this queue at
  // once; the limiter's short retryAt remains the fallback should a message be lost.
  const releaseChannel = redisLimiter.releaseChannel;
  const releaseChannels = new Set([releaseChannel]);
  subscriber.on('message', (channel: string) => {
    if (releaseChannels.has(channel)) options.onSlotReleased?.();
  });
  await subscriber.subscribe(releaseChannel).catch(() => undefined);
  // Every start and release elsewhere, live: the fail-safe's hold for the others rests on it.
  await redisLimiter.followLoad(subscriber).catch(() => undefined);
  const admissionNews = new AdmissionNews({
    publisher: redis,
    subscriber,
    keyPrefix: config.redisKeyPrefix,
    instanceId,
    clock,
    onServedElsewhere: (served) => options.onServedElsewhere?.(served),
  });
  await admissionNews.start().catch(() => undefined);
  let control: ClusterControl | undefined;

  return {
    instanceId,
    redis,
    limiter,
    aimd,
    registry,
    admissionNews,
    leases: () =>
      leaseFigures(
        registry.self(),
        registry.instances(),
        redisLimiter.leaseCounts(),
        redisLimiter.clusterLoad().active,
      ),
    async endpointLimiter(endpoint) {
      const endpointRedis = new RedisLimiter({
        redis,
        keyPrefix: `${config.redisKeyPrefix}endpoint:${endpoint.name}:`,
        instanceId,
        clock,
        maxConcurrent: endpoint.maxConcurrent,
        maxRpm: endpoint.maxRpm,
        maxTpm: endpoint.maxTpm,
        leaseMs: tuning.leaseMs,
        renewEveryMs: tuning.renewEveryMs,
        onClusterStarts: (starts) => options.onClusterStarts?.(endpoint.name, starts),
      });
      const limits = {
        clock,
        maxConcurrent: endpoint.maxConcurrent,
        maxRpm: endpoint.maxRpm,
        maxTpm: endpoint.maxTpm,
      };
      const endpointAimd = new Aimd(limits);
      const endpointShare = new QuotaShare({
        shared: endpointRedis,
        local: endpointAimd,
        instances: () => registry.count(),
      });
      const endpointLimiter = new FailSafeLimiter({
        shared: endpointRedis,
        local: new InMemoryLimiter({ ...limits, aimd: endpointShare }),
        share: endpointShare,
        clock,
        callTimeoutMs: llm.timeoutMs,
        logger,
        probeEveryMs: tuning.probeEveryMs,
        onModeChange: options.onLimiterModeChange,
        othersBackSince: (since) => registry.othersBackSince(since),
      });
      if (startFailure !== undefined) endpointLimiter.reportFailure(startFailure);
      releaseChannels.add(endpointRedis.releaseChannel);
      await subscriber.subscribe(endpointRedis.releaseChannel).catch(() => undefined);
      await endpointRedis.followLoad(subscriber).catch(() => undefined);
      return {
        limiter: endpointLimiter,
        aimd: new SharedAimd({ shared: endpointRedis, local: endpointAimd }),
      };
    },
    get control() {
      if (!control) throw new Error('cluster.start() first');
      return control;
    },
    async start(deps) {
      control = new ClusterControl({
        publisher: redis,
        subscriber,
        keyPrefix: config.redisKeyPrefix,
        instanceId,
        apply: deps.apply,
        onError: (error) => logger?.warn({ error: String(error) }, 'Cluster control channel failed'),
      });
      await Promise.all([registry.start(deps.figures), control.start()]);
    },
    async close() {
      await control?.close();
      admissionNews.stop();
      await registry.close();
      await limiter.close();
      // quit() waits for replies; with Redis gone, disconnect instead of hanging.
      await Promise.all(
        [redis, subscriber].map((client) =>
          client.status === 'ready' ? client.quit().catch(() => client.disconnect()) : client.disconnect(),
        ),
      );
    },
  };
}
