import { abortReason } from '../../errors';
import { ProviderError } from '../provider';
import type { ProviderBreaker } from '../provider-breaker';
import type { SchedulerEventStream, SchedulerLogger } from '../scheduler-events';
import type { CallContext, CallPolicy, CallStep } from './call-policy';

/**
 * The provider's circuit breaker around each attempt: it fails fast with llm_unavailable while open
 * (and while half-open, for any call but its probe), and hears every provider verdict. A call
 * already aborted never reaches it: it would give no verdict, and half-open it would take the probe
 * another call could have made. State changes go to the event stream and the log.
 */
export class BreakerPolicy implements CallPolicy {
  constructor(
    private readonly options: {
      breaker: ProviderBreaker;
      events: SchedulerEventStream;
      logger?: SchedulerLogger;
    },
  ) {
    options.breaker.addListener({
      onStateChange: (state, unavailable) => {
        options.events.emit({ type: 'breaker', state });
        if (unavailable && state === 'open') {
          const { reason, providerCode, providerMessage } = unavailable;
          options.logger?.warn(
            { state, reason, providerCode, providerMessage },
            'LLM provider refuses every call until a person acts; calls fail fast until a probe succeeds',
          );
        } else options.logger?.warn({ state }, 'LLM provider circuit breaker changed state');
      },
    });
  }

  async execute(next: CallStep, signal: AbortSignal, call: CallContext) {
    if (signal.aborted) throw abortReason(signal);
    let reached = false;
    try {
      return await this.options.breaker.execute(() => {
        reached = true;
        return next(signal);
      });
    } catch (error) {
      const agentType = call.meta.agentType;
      if (!reached) this.options.events.emit({ type: 'breaker_rejected', agentType });
      else if (error instanceof ProviderError) {
        if (error.unusable)
          this.options.events.emit({ type: 'provider_refused', agentType, reason: error.unusable });
        if (error.kind === 'timeout') this.options.events.emit({ type: 'first_byte_timeout', agentType });
      }
      throw error;
    }
  }
}
