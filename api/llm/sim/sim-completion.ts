import type { Response } from 'express';
import type { CompletionRequest } from '../provider';
import type { SimProvider } from '../providers/sim-provider';
import { splitArguments, toCompletionRequest, toWireToolCall, toWireUsage } from './sim-wire';
import type { WireRequest } from './sim-wire';

/** What an injected fault does to one accepted call (see sim-faults.ts). */
export interface CompletionFault {
  cutAfterChunks: number;
  firstByteDelayMs: number;
  onCut: () => void;
}

/** Runs one accepted call and writes it as an OpenAI streamed or plain response. */
export async function serveCompletion(
  provider: SimProvider,
  wire: WireRequest,
  response: Response,
  signal: AbortSignal,
  fault: CompletionFault,
  thinkingRequests: WeakSet<CompletionRequest>,
): Promise<void> {
  if (fault.firstByteDelayMs > 0) await abortableDelay(fault.firstByteDelayMs, signal);
  const request = toCompletionRequest(wire);
  if (wire.thinking?.type === 'enabled') thinkingRequests.add(request);
  const id = `chatcmpl-sim${Math.random().toString(36).slice(2, 14)}`;
  const created = Math.floor(Date.now() / 1000);
  const model = wire.model ?? 'troupe-sim';
  const base = { id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_troupe_sim' };

  if (!wire.stream) {
    const result = await provider.complete(request, { signal });
    response.json({
      id,
      object: 'chat.completion',
      created,
      model,
      system_fingerprint: base.system_fingerprint,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: result.toolCalls.length > 0 && result.text === '' ? null : result.text,
            ...(result.reasoning ? { reasoning_content: result.reasoning } : {}),
            ...(result.toolCalls.length > 0 ? { tool_calls: result.toolCalls.map(toWireToolCall) } : {}),
          },
          logprobs: null,
          finish_reason: result.finishReason,
        },
      ],
      usage: toWireUsage(result),
    });
    return;
  }

  const includeUsage = wire.stream_options?.include_usage === true;
  const write = (data: unknown) => response.write(`data: ${JSON.stringify(data)}\n\n`);
  const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) =>
    write({
      ...base,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...(includeUsage ? { usage: null } : {}),
    });
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
  });
  response.socket?.setNoDelay(true);
  response.flushHeaders();
  chunk({ role: 'assistant', content: '' });
  let contentChunks = 0;
  const cut = new AbortController();
  const result = await provider.complete(request, {
    signal: AbortSignal.any([signal, cut.signal]),
    onReasoning: (text) => {
      if (!cut.signal.aborted) chunk({ reasoning_content: text });
    },
    onDelta: (text) => {
      if (cut.signal.aborted) return;
      chunk({ content: text });
      if (fault.cutAfterChunks > 0 && ++contentChunks >= fault.cutAfterChunks) {
        // The connection drops mid-answer, as a provider's load balancer sometimes does — after the
        // chunks already written have left (destroy() would discard any still buffered, and on a
        // loaded machine the client would see no text at all).
        fault.onCut();
        const socket = response.socket;
        if (socket) socket.destroySoon();
        else response.destroy();
        cut.abort();
      }
    },
  });
  result.toolCalls.forEach((call, index) => {
    chunk({
      tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }],
    });
    for (const piece of splitArguments(call.arguments))
      chunk({ tool_calls: [{ index, function: { arguments: piece } }] });
  });
  chunk({}, result.finishReason);
  if (includeUsage) write({ ...base, choices: [], usage: toWireUsage(result) });
  response.end('data: [DONE]\n\n');
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
