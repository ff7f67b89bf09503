import type { Config } from '../../config';
import type { Clock } from '../clock';
import type { Logger } from '../logger';
import type { AlertSample } from './alert-conditions';
import { AlertEvaluator } from './alert-evaluator';
import { WebhookNotifier } from './webhook-notifier';

/**
 * The alert evaluator the settings ask for: ALERT_WEBHOOK_URL names where notices go, and
 * without it there are no alerts (undefined). Started by the caller.
 */
export function createAlerts(
  settings: Config['alerts'],
  deps: {
    clock: Clock;
    logger: Logger;
    instance: string;
    /** Builds the sampler, only when alerts are on (it counts every chat's end). */
    createSample: () => () => AlertSample;
  },
): AlertEvaluator | undefined {
  if (!settings.webhookUrl) return undefined;
  const { clock, logger } = deps;
  return new AlertEvaluator({
    clock,
    logger,
    instance: deps.instance,
    sample: deps.createSample(),
    sink: new WebhookNotifier({
      url: settings.webhookUrl,
      format: settings.webhookFormat,
      timeoutMs: settings.webhookTimeoutMs,
      maxPerHour: settings.webhookMaxPerHour,
      clock,
      logger,
    }),
    intervalMs: settings.evaluationIntervalMs,
    forMs: settings.forMs,
    waitTargetMs: settings.waitP95TargetMs,
  });
}
