import type { Clock, TimerHandle } from '../clock';
import { ToolError, isToolError } from './tool-errors';
import type { AnyToolPlugin, ToolExecutionContext } from './tool-plugin';

/**
 * Runs `plugin` under its timeout (`policy.rateLimit.timeout`, on `clock`) and the caller's signal:
 * the plugin gets a signal of its own, aborted with tool_timeout when time is up or with cancelled
 * when the caller aborts, and the call settles at that moment even if the plugin ignores its signal.
 */
export async function executeWithTimeout(
  plugin: AnyToolPlugin,
  args: unknown,
  context: ToolExecutionContext,
  clock: Clock,
): Promise<unknown> {
  const { name } = plugin;
  const timeoutMs = plugin.policy.rateLimit.timeout;
  if (context.signal.aborted) throw new ToolError('cancelled', 'The call was cancelled');
  const controller = new AbortController();
  const onCallerAbort = () => controller.abort(new ToolError('cancelled', 'The call was cancelled'));
  context.signal.addEventListener('abort', onCallerAbort, { once: true });
  const aborted = new Promise<never>((_resolve, reject) => {
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
  });
  aborted.catch(() => undefined);
  const timer: TimerHandle = clock.setTimeout(() => {
    controller.abort(
      new ToolError(
        'tool_timeout',
        `${name} did not finish within ${timeoutMs} ms; try again later or continue without it.`,
      ),
    );
  }, timeoutMs);
  try {
    const work = Promise.resolve().then(() =>
      plugin.execute(args, {
        signal: controller.signal,
        userId: context.userId,
        conversationId: context.conversationId,
      }),
    );
    work.catch(() => undefined);
    return await Promise.race([work, aborted]);
  } catch (error) {
    // A plugin that reacts to our abort throws its own AbortError; the reason we aborted is the truth.
    if (controller.signal.aborted && isToolError(controller.signal.reason)) throw controller.signal.reason;
    throw error;
  } finally {
    clock.clearTimeout(timer);
    context.signal.removeEventListener('abort', onCallerAbort);
  }
}
