import http from 'node:http';
import { ASSISTANT_PROMPT } from '../../api/agents/prompts';
import { runChat } from './chat-client';
import { composeMessage, pickKind } from './chat-messages';
import { seededRandom } from './statistics';

/**
 * The requests the `cpu` scenario sends: a Troupe one-call chat answered as JSON, a Troupe
 * multi-agent chat over SSE, and the one-call chat's provider request sent through Portkey to the
 * same sim-llm (non-streamed and streamed). Each resolves true when the answer was complete.
 */

export type CpuRequest = (client: number) => Promise<boolean>;

/** Keep-alive sockets for one server: the loop reuses them like a client library would. */
export function keepAliveAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: Infinity });
}

/** Sends `body` as JSON and reads the whole answer; resolves with the status and the text. */
function post(
  url: URL,
  agent: http.Agent,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        hostname: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...headers,
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (piece: string) => (text += piece));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** Messages drawn per client from its own seeded sequence, so runs are repeatable. */
function messages(
  seed: number,
  kind?: 'long',
): (client: number) => { message: string; kind: ReturnType<typeof pickKind> } {
  const draws = new Map<number, () => number>();
  return (client) => {
    let draw = draws.get(client);
    if (!draw) draws.set(client, (draw = seededRandom(seed * 1_000_003 + client)));
    const chosen = kind ?? pickKind(draw());
    return { kind: chosen, message: composeMessage(chosen, draw()) };
  };
}

/** POST /api/chat {mode: single}, Accept: application/json: one provider call, answered as one JSON object. */
export function troupeOneCall(troupeUrl: string, seed: number): CpuRequest {
  const url = new URL('/api/chat', troupeUrl);
  const agent = keepAliveAgent();
  const next = messages(seed, 'long');
  return async (client) => {
    const { message } = next(client);
    const { status, text } = await post(url, agent, JSON.stringify({ message, mode: 'single' }), {
      accept: 'application/json',
      'x-user-id': `cpu-user-${client}`,
    });
    return status === 200 && text.includes('"answer"');
  };
}

/** POST /api/chat {mode: multi_agent} over SSE, read to its `done` (the benchmark's usual mix of messages). */
export function troupeMultiAgent(troupeUrl: string, seed: number, timeoutMs: number): CpuRequest {
  const target = { url: new URL(troupeUrl), agent: keepAliveAgent() };
  const next = messages(seed);
  return async (client) => {
    const { message, kind } = next(client);
    const record = await runChat(
      target,
      { user: client, userId: `cpu-user-${client}`, kind, message },
      { timeoutMs },
    );
    return record.outcome === 'completed';
  };
}

/**
 * The one-call chat's provider request (the Assistant's system prompt and a user message) sent to
 * Portkey's OpenAI-compatible route, which relays it to sim-llm as provider `openai` at a custom host.
 */
export function portkeyCall(
  portkeyUrl: string,
  simBaseUrl: string,
  seed: number,
  stream: boolean,
): CpuRequest {
  const url = new URL('/v1/chat/completions', portkeyUrl);
  const agent = keepAliveAgent();
  const next = messages(seed, 'long');
  const headers = {
    authorization: 'Bearer bench',
    'x-portkey-provider': 'openai',
    'x-portkey-custom-host': simBaseUrl,
    accept: stream ? 'text/event-stream' : 'application/json',
  };
  return async (client) => {
    const { message } = next(client);
    const body = JSON.stringify({
      model: 'troupe-sim',
      messages: [
        { role: 'system', content: ASSISTANT_PROMPT },
        { role: 'user', content: message },
      ],
      max_tokens: 1024,
      temperature: 0.5,
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    });
    const { status, text } = await post(url, agent, body, headers);
    return status === 200 && (stream ? text.includes('[DONE]') : text.includes('"choices"'));
  };
}
