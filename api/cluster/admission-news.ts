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
  | { from: string; late: string; deadline: number }
  | { from: string; lateEnded: string }
  | { from: string; served: ServiceSample };

/**
 * What admission measures that every instance of a cluster needs (docs/ARCHITECTURE.md,
 * "Admission in a cluster"), told on one Redis channel:
 * - **late chats**: their calls go before every class of every instance (the one order in Redis),
 *   so a chat started late anywhere waits behind the late chats of all the instances, not only its
 *   own instance's. Each instance keeps the others' until they end, or at the latest until their
 *   deadline (a late chat ends by then; a killed instance's are dropped so, and a lost message
 *   costs nothing past it);
 * - **completed chats' service time and calls**: a chat's own work takes as long wherever it runs,
 *   so each instance has admission's ten samples after ten chats of the cluster, not of its own.
 * Told fire and forget: with Redis gone, each instance measures alone again.
 */
export class AdmissionNews {
  private readonly channel: string;
  /** Late chats of the other instances: `<instance> <run>` -> deadline. */
  private readonly lateElsewhereByRun = new Map<string, number>();

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

  lateStarted(runId: string, deadline: number): void {
    this.tell({ from: this.options.instanceId, late: runId, deadline });
  }

  lateEnded(runId: string): void {
    this.tell({ from: this.options.instanceId, lateEnded: runId });
  }

  served(served: ServiceSample): void {
    this.tell({ from: this.options.instanceId, served });
  }

  /** Late chats running on the other instances, as last told (those past their deadline dropped). */
  lateElsewhere(): number {
    const now = this.options.clock.now();
    for (const [key, deadline] of this.lateElsewhereByRun)
      if (deadline <= now) this.lateElsewhereByRun.delete(key);
    return this.lateElsewhereByRun.size;
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
      if (news.deadline > this.options.clock.now())
        this.lateElsewhereByRun.set(`${news.from} ${news.late}`, news.deadline);
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
