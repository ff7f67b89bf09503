import type Redis from 'ioredis';
import type { Clock } from '../clock';
import type { ServiceSample } from '../llm/line-meter';

export interface AdmissionNewsOptions {
  /** The commands connection (publishes). */
  publisher: Redis;
  /** The subscriber connection, shared with the other channels (built by the composition root). */
  subscriber: Redis;
  keyPrefix: string;
  instanceId: string;
  clock: Pick<Clock, 'now'>;
  /** A chat completed on another instance. */
  onServedElsewhere: (served: ServiceSample) => void;
  onError?: (error: unknown) => void;
}

type News =
  | { from: string; late: string; deadline: number; calls?: number }
  | { from: string; lateCall: string }
  | { from: string; lateEnded: string }
  | { from: string; served: ServiceSample };

/**
 * What admission measures that every instance of a cluster needs (docs/ARCHITECTURE.md,
 * "Admission in a cluster"), told on one Redis channel:
 * - **late chats**: their calls go before every class of every instance (the one order in Redis),
 *   so a chat started late anywhere waits behind the late chats of all the instances, not only its
 *   own instance's. Each instance keeps the others' until they end, or at the latest until their
 *   deadline (a late chat ends by then; a killed instance's are dropped so, and a lost message
 *   costs nothing past it), with the calls each has started (told as it goes late and at each
 *   call since): a late chat near its end holds the others up by the few calls it has left;
 * - **completed chats' service time and calls**: a chat's own work takes as long wherever it runs,
 *   so each instance has admission's ten samples after ten chats of the cluster, not of its own.
 * Told fire and forget: with Redis gone, each instance measures alone again.
 */
export class AdmissionNews {
  private readonly channel: string;
  /** Late chats of the other instances: `<instance> <run>` -> deadline and calls started. */
  private readonly lateElsewhereByRun = new Map<string, { deadline: number; calls: number }>();

  constructor(private readonly options: AdmissionNewsOptions) {
    this.channel = `${options.keyPrefix}llm:admission`;
  }

  async start(): Promise<void> {
    this.options.subscriber.on('message', this.onMessage);
    await this.options.subscriber.subscribe(this.channel);
  }

  stop(): void {
    this.options.subscriber.off('message', this.onMessage);
  }

  /** A chat here went late, having started `calls` calls. */
  lateStarted(runId: string, deadline: number, calls = 0): void {
    this.tell({ from: this.options.instanceId, late: runId, deadline, calls });
  }

  /** A late chat here started one more call. */
  lateCalled(runId: string): void {
    this.tell({ from: this.options.instanceId, lateCall: runId });
  }

  lateEnded(runId: string): void {
    this.tell({ from: this.options.instanceId, lateEnded: runId });
  }

  served(served: ServiceSample): void {
    this.tell({ from: this.options.instanceId, served });
  }

  /**
   * Late chats running on the other instances, as last told (those past their deadline dropped):
   * the calls each has started, one entry per chat.
   */
  lateElsewhere(): number[] {
    const now = this.options.clock.now();
    const calls: number[] = [];
    for (const [key, late] of this.lateElsewhereByRun) {
      if (late.deadline <= now) this.lateElsewhereByRun.delete(key);
      else calls.push(late.calls);
    }
    return calls;
  }

  private tell(news: News): void {
    this.options.publisher
      .publish(this.channel, JSON.stringify(news))
      .catch((error: unknown) => this.options.onError?.(error));
  }

  private readonly onMessage = (channel: string, message: string): void => {
    if (channel !== this.channel) return;
    let news: News;
    try {
      news = JSON.parse(message) as News;
    } catch {
      return;
    }
    if (typeof news !== 'object' || news === null || news.from === this.options.instanceId) return;
    if ('late' in news && Number.isFinite(news.deadline)) {
      const calls = Number.isInteger(news.calls) && news.calls! > 0 ? news.calls! : 0;
      if (news.deadline > this.options.clock.now())
        this.lateElsewhereByRun.set(`${news.from} ${news.late}`, { deadline: news.deadline, calls });
    } else if ('lateCall' in news) {
      const late = this.lateElsewhereByRun.get(`${news.from} ${news.lateCall}`);
      if (late) late.calls++;
    } else if ('lateEnded' in news) {
      this.lateElsewhereByRun.delete(`${news.from} ${news.lateEnded}`);
    } else if ('served' in news && isServiceSample(news.served)) {
      this.options.onServedElsewhere(news.served);
    }
  };
}

function isServiceSample(value: unknown): value is ServiceSample {
  const sample = value as ServiceSample;
  return (
    typeof sample === 'object' &&
    sample !== null &&
    Number.isFinite(sample.serviceMs) &&
    sample.serviceMs >= 0 &&
    Number.isInteger(sample.calls) &&
    sample.calls >= 0
  );
}
