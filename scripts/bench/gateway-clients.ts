import http from 'node:http';
import { now } from './chat-client';
import { seededRandom } from './statistics';

/**
 * The `/v1` callers of the gateway scenario: open-loop Poisson arrivals (a caller sends at its
 * rate whatever happened to its earlier requests), each one non-streamed OpenAI chat completion with a
 * prompt of its own (no two alike, so the response cache answers none of them).
 */

export interface CallerSpec {
  name: string;
  callerClass: 'interactive' | 'batch';
  /** Requests per second. */
  rate: number;
}

export interface GatewayTarget {
  /** e.g. http://127.0.0.1:3000 (Troupe) or Portkey's URL. */
  url: URL;
  model: string;
  /** Extra headers per caller (its key; Portkey's provider headers). */
  headers(caller: CallerSpec): Record<string, string>;
}

export interface CallRecord {
  caller: string;
  callerClass: CallerSpec['callerClass'];
  sentAt: number;
  latencyMs: number;
  /** HTTP status; 0 for a network failure or a client timeout. */
  status: number;
  /** The error body's code (Troupe's), or type, when not 200. */
  code?: string;
}

function post(
  url: URL,
  agent: http.Agent,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const request = http.request(
      {
        hostname: url.hostname,
        port: url.port,
        path: '/v1/chat/completions',
        method: 'POST',
        agent,
        timeout: timeoutMs,
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
        response.on('error', () => resolve({ status: 0, text: '' }));
      },
    );
    request.on('timeout', () => request.destroy(new Error('client timeout')));
    request.on('error', () => resolve({ status: 0, text: '' }));
    request.end(body);
  });
}

/** Runs every caller for `durationMs`; resolves with one record per request once all ended. */
export async function runCallers(
  target: GatewayTarget,
  callers: CallerSpec[],
  durationMs: number,
  timeoutMs: number,
  seed: number,
): Promise<CallRecord[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const records: CallRecord[] = [];
  const pending: Array<Promise<void>> = [];
  const startedAt = now();
  let sequence = 0;
  const send = (caller: CallerSpec) => {
    const number = ++sequence;
    const body = JSON.stringify({
      model: target.model,
      max_tokens: 120,
      messages: [
        { role: 'system', content: 'You are the Assistant of a team service.' },
        {
          role: 'user',
          content: `Request ${number} from ${caller.name}: summarise the benefits of green tea`,
        },
      ],
    });
    const sentAt = now();
    pending.push(
      post(target.url, agent, body, target.headers(caller), timeoutMs).then(({ status, text }) => {
        const record: CallRecord = {
          caller: caller.name,
          callerClass: caller.callerClass,
          sentAt,
          latencyMs: now() - sentAt,
          status,
        };
        if (status !== 200) record.code = errorCode(text) ?? (status === 0 ? 'network' : `http_${status}`);
        records.push(record);
      }),
    );
  };
  await Promise.all(
    callers.map(async (caller, index) => {
      // Poisson arrivals (seeded per caller): real callers are not phase-locked to one another,
      // nor to the scheduler's paced starts.
      const random = seededRandom(seed * 1000 + index + 1);
      for (let at = -Math.log(1 - random()) * (1000 / caller.rate); at < durationMs;) {
        const wait = startedAt + at - now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        send(caller);
        at += -Math.log(1 - random()) * (1000 / caller.rate);
      }
    }),
  );
  await Promise.all(pending);
  agent.destroy();
  return records;
}

function errorCode(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; type?: unknown } };
    const code = body.error?.code ?? body.error?.type;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}
