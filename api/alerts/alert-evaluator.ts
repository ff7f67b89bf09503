import type { Clock, TimerHandle } from '../clock';
import type { Logger } from '../logger';
import {
  ALERT_CONDITIONS,
  ALERT_WINDOW_MS,
  type AlertCondition,
  type AlertSample,
  type Severity,
  type TimedSample,
} from './alert-conditions';

/** One notification: an alert starting, or the same alert ending. */
export interface AlertNotice {
  name: string;
  severity: Severity;
  state: 'firing' | 'resolved';
  summary: string;
  instance: string;
  /** Epoch ms. */
  startsAt: number;
  endsAt?: number;
}

export interface AlertSink {
  send(notice: AlertNotice): Promise<void>;
}

interface ConditionState {
  /** When the condition started holding (pending or firing), or stopped holding while firing. */
  since?: number;
  firing: boolean;
  firedAt?: number;
  summary?: string;
}

/**
 * Evaluates the alert conditions every `intervalMs` on the injected clock, keeping 5 minutes of
 * samples. Like a Prometheus rule's `for:`, a condition must hold for `forMs` before it fires, and
 * be gone for `forMs` before it resolves, so a flapping figure does not flood the channel.
 */
export class AlertEvaluator {
  private readonly history: TimedSample[] = [];
  private readonly states = new Map<string, ConditionState>();
  private timer?: TimerHandle;

  constructor(
    private readonly options: {
      clock: Clock;
      sample: () => AlertSample;
      sink: AlertSink;
      instance: string;
      intervalMs: number;
      forMs: number;
      waitTargetMs: number;
      logger?: Logger;
      /** Epoch ms for the notices (the clock is monotonic); Date.now by default. */
      wallNow?: () => number;
      conditions?: AlertCondition[];
    },
  ) {}

  start(): void {
    const tick = () => {
      this.evaluate();
      this.timer = this.options.clock.setTimeout(tick, this.options.intervalMs);
    };
    this.timer = this.options.clock.setTimeout(tick, this.options.intervalMs);
  }

  stop(): void {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One evaluation; returns the notices it sent (tests read them). */
  evaluate(): AlertNotice[] {
    const now = this.options.clock.now();
    const current: TimedSample = { at: now, sample: this.options.sample() };
    this.history.push(current);
    while (this.history.length > 1 && this.history[0].at < now - ALERT_WINDOW_MS) this.history.shift();
    const windowStart = this.history[0];
    const notices: AlertNotice[] = [];
    for (const condition of this.options.conditions ?? ALERT_CONDITIONS) {
      const summary = condition.check(current, windowStart, this.options.waitTargetMs);
      const notice = this.step(condition, summary, now);
      if (notice) notices.push(notice);
    }
    for (const notice of notices) {
      this.options.sink.send(notice).catch((error: unknown) => {
        this.options.logger?.warn({ alert: notice.name, error: String(error) }, 'alert webhook post failed');
      });
    }
    return notices;
  }

  private step(condition: AlertCondition, summary: string | undefined, now: number): AlertNotice | undefined {
    const state = this.states.get(condition.name) ?? { firing: false };
    this.states.set(condition.name, state);
    const holds = summary !== undefined;
    if (holds) state.summary = summary;
    if (holds === state.firing) {
      // Firing and still holding, or quiet and still quiet: any pending change is off.
      state.since = undefined;
      return undefined;
    }
    state.since ??= now;
    if (now - state.since < this.options.forMs) return undefined;
    state.since = undefined;
    const wallNow = (this.options.wallNow ?? Date.now)();
    const base = { name: condition.name, severity: condition.severity, instance: this.options.instance };
    if (holds) {
      state.firing = true;
      state.firedAt = wallNow;
      return { ...base, state: 'firing', summary: summary!, startsAt: wallNow };
    }
    state.firing = false;
    return {
      ...base,
      state: 'resolved',
      summary: `resolved: ${state.summary ?? condition.name}`,
      startsAt: state.firedAt ?? wallNow,
      endsAt: wallNow,
    };
  }
}
