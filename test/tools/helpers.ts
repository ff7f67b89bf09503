import { z } from 'zod';
import { defineToolPlugin, type ToolExecutionContext, type ToolPolicy } from '../../api/tools/tool-plugin';
import type { ToolCallContext } from '../../api/tools/tool-runner';

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

export const echoParameters = z.object({
  text: z.string().min(1).max(50),
  times: z.number().int().min(1).max(3).optional(),
});

type EchoArgs = z.output<typeof echoParameters>;

/** A test tool whose work the test controls; it records every execution and the signal it got. */
export function echoTool(
  options: {
    policy?: Partial<ToolPolicy<EchoArgs>>;
    work?: (args: EchoArgs, context: ToolExecutionContext) => Promise<unknown>;
    fallback?: (args: EchoArgs) => unknown;
  } = {},
) {
  const executions: Array<{ args: EchoArgs; signal: AbortSignal }> = [];
  const plugin = defineToolPlugin({
    name: 'echo',
    description: 'Repeats the text.',
    parameters: echoParameters,
    policy: {
      rateLimit: { maxConcurrent: 100, maxPerMinute: 1000, timeout: 5000 },
      cache: { enabled: true, ttl: 60, keyStrategy: 'params' },
      breaker: { errorThresholdPercentage: 50, volumeThreshold: 5, resetTimeout: 30_000 },
      ...options.policy,
    },
    async execute(args, context) {
      executions.push({ args, signal: context.signal });
      if (options.work) return options.work(args, context);
      return { echoed: args.text.repeat(args.times ?? 1) };
    },
    fallback: options.fallback ? async (args) => options.fallback!(args) : undefined,
  });
  return { plugin, executions };
}

export function callContext(signal: AbortSignal = new AbortController().signal): ToolCallContext {
  return { userId: 'user-1', conversationId: 'conversation-1', signal };
}

let nextCall = 1;
export function toolCall(name: string, args: unknown) {
  return {
    id: `call_${nextCall++}`,
    name,
    arguments: typeof args === 'string' ? args : JSON.stringify(args),
  };
}

/** Polls a condition on real time (for opossum's own timers, which cannot take our clock). */
export async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
