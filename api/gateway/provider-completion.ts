import type { Request, Response } from 'express';
import type { Config } from '../../config';
import { AppError, toAppError } from '../errors';
import type { LlmGateway } from '../llm/llm-gateway';
import { estimatePromptTokens } from '../llm/provider';
import type { Caller } from './caller';
import type { CallerLimiter } from './caller-limits';
import type { GatewayModels } from './gateway-models';
import { CompletionStream, completionObject, newIdentity } from './completion-chunks';
import { toCompletionRequest, type CompletionBody } from './completion-request';
import { sendOpenAIError } from './openai-errors';

export interface ProviderCompletionDeps {
  config: Pick<Config, 'llm' | 'gateway'>;
  /** The same LlmGateway the agents call: the response cache in front of the scheduler. */
  llm: LlmGateway;
  limits: CallerLimiter;
  /** How long a caller refused for lack of room should wait: the queue's measured wait. */
  retryAfterMs: () => number;
  /** The models callers may name; with an endpoints file, a call's model picks its endpoints. */
  models: GatewayModels;
}

/**
 * A completion for a provider model: one call down the same path as every agent's call (the
 * response cache, then the scheduler's retry, queue slot with its priority class and per-caller
 * fairness, quota, breaker and timeout), in the caller's class, at the endpoints serving the model
 * it named (with an endpoints file; else the default route). Streamed, each delta is relayed as
 * it arrives; the tool calls, the finish reason and the usage follow when the call completes.
 *
 * A client that disconnects aborts the call wherever it is (queued: it leaves the queue; in
 * flight: the provider request is cancelled), so it stops costing quota.
 */
export async function serveProviderCompletion(
  req: Request,
  res: Response,
  body: CompletionBody,
  caller: Caller,
  deps: ProviderCompletionDeps,
): Promise<void> {
  const request = toCompletionRequest(body);
  const estimatedTokens =
    estimatePromptTokens(request) + (request.maxTokens ?? deps.config.llm.maxOutputTokens);
  const lease = deps.limits.acquire(caller.key, caller.limits, estimatedTokens);
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableEnded) controller.abort(new AppError('cancelled', 'The client closed the connection'));
  };
  res.on('close', onClose);
  // A client can hang up while its body was being read; its `close` has then already fired.
  if (req.socket.destroyed) onClose();
  const identity = newIdentity(body.model);
  const stream = body.stream ? new CompletionStream(res, identity) : undefined;
  try {
    const outcome = await deps.llm.complete(
      {
        agentType: caller.priorityClass,
        userId: caller.name,
        conversationId: identity.id,
        maxWaitMs: deps.config.gateway.maxWaitMs,
        // The endpoints serving the named model, never another model's (docs/ENDPOINTS.md).
        ...(deps.models.routesByModel ? { model: body.model } : {}),
      },
      request,
      { signal: controller.signal, ...(stream ? { onDelta: (text: string) => stream.content(text) } : {}) },
    );
    lease.settle(outcome.usage.promptTokens + outcome.usage.completionTokens);
    if (stream) {
      stream.toolCalls(outcome.toolCalls);
      stream.finish(outcome, body.stream_options?.include_usage === true);
    } else {
      res.type('application/json').end(JSON.stringify(completionObject(identity, outcome)));
    }
  } catch (caught) {
    if (controller.signal.aborted && res.destroyed) return;
    const failure = withRetryAfter(toAppError(caught), deps);
    if (stream?.isOpen) stream.fail(failure);
    else sendOpenAIError(res, failure);
  } finally {
    lease.release();
    res.off('close', onClose);
  }
}

/** A call that waited its longest (GATEWAY_MAX_WAIT_MS) learns when to come back. */
export function withRetryAfter(
  error: AppError,
  deps: Pick<ProviderCompletionDeps, 'retryAfterMs'>,
): AppError {
  if (error.code !== 'queue_timeout' || error.retryAfterMs !== undefined) return error;
  return new AppError('queue_timeout', 'Troupe could not serve this call in time; retry after Retry-After', {
    retryAfterMs: deps.retryAfterMs(),
    cause: error,
  });
}
