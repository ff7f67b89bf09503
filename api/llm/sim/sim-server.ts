import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { systemClock } from '../../clock';
import type { Clock } from '../../clock';
import type { CompletionRequest } from '../provider';
import { SimProvider } from '../providers/sim-provider';
import { wireRequestSchema } from './sim-wire';
import { SIM_FAULT_DEFAULTS, SimFaults } from './sim-faults';
import type { SimFaultCounters, SimFaultOptions } from './sim-faults';
import { serveCompletion } from './sim-completion';
import { sendError } from './sim-errors';
import { SimQuota } from './sim-quota';

/**
 * sim-llm: a standalone OpenAI-compatible provider around the simulated model. It enforces its
 * quota as a real provider does — 429 + Retry-After past `concurrency` calls in flight or `rpm`
 * starts in the rolling last 60 s — so the scheduler can be tested, demonstrated and benchmarked
 * against something that pushes back. The quota is sim-quota.ts, one call's answer sim-completion.ts.
 */

export interface SimServerOptions extends SimFaultOptions {
  port?: number;
  host?: string;
  /** Call starts accepted per rolling 60 s. */
  rpm?: number;
  /** Calls in flight at once. */
  concurrency?: number;
  /** First-token latency, ms. */
  latencyMs?: number;
  /** Stream chunks (words) per second. */
  tps?: number;
  /**
   * Think aloud before every answer (`reasoning_content` deltas, as Ark's thinking models); without
   * it, only requests with `thinking: {type: "enabled"}` do.
   */
  thinking?: boolean;
  clock?: Clock;
}

export interface SimServerStats {
  requests: number;
  accepted: number;
  rejected429: number;
  inFlight: number;
  maxInFlight: number;
  completed: number;
  /** Calls whose client disconnected before the answer was complete. */
  aborted: number;
  /** Faults injected on purpose (see sim-faults.ts); present when fault flags are set. */
  faults?: SimFaultCounters;
}

export interface SimServer {
  /** The server root, e.g. http://127.0.0.1:8081. */
  url: string;
  /** The OpenAI base URL to configure (LLM_BASE_URL): `${url}/v1`. */
  baseUrl: string;
  port: number;
  stats(): SimServerStats;
  /** Zeroes the counters and the rolling window (calls in flight stay counted). */
  reset(): void;
  /** Aborts calls in flight and closes every connection. */
  close(): Promise<void>;
}

export const SIM_SERVER_DEFAULTS = {
  port: 8081,
  host: '127.0.0.1',
  rpm: 600,
  concurrency: 20,
  latencyMs: 800,
  tps: 40,
  ...SIM_FAULT_DEFAULTS,
};

/** Starts sim-llm; port 0 picks a free port. Resolves once it listens. */
export async function startSimServer(options: SimServerOptions = {}): Promise<SimServer> {
  const settings = { ...SIM_SERVER_DEFAULTS, ...definedOnly(options) };
  const clock = options.clock ?? systemClock;
  // Requests that asked to think (`thinking: {type: "enabled"}`), or all of them with `thinking`.
  const thinkingRequests = new WeakSet<CompletionRequest>();
  const provider = new SimProvider({
    latencyMs: settings.latencyMs,
    tokensPerSecond: settings.tps,
    clock,
    thinking: (request) => options.thinking === true || thinkingRequests.has(request),
  });
  const quota = new SimQuota(settings.rpm, settings.concurrency, clock);
  const controllers = new Set<AbortController>();
  let counters = zeroCounters();
  let inFlight = 0;
  let faults = new SimFaults(settings);
  // Stats name the faults only when some are injected: a plain sim-llm reports what it always did.
  let injecting = [
    settings.failPercent,
    settings.cutAfterChunks,
    settings.firstByteDelayMs,
    settings.hangPercent,
    settings.storm429Percent,
  ].some((value) => value > 0);
  const stats = (): SimServerStats => ({
    ...counters,
    inFlight,
    ...(injecting ? { faults: { ...faults.counters } } : {}),
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '20mb' }));

  app.post(['/v1/chat/completions', '/chat/completions', '/api/v3/chat/completions'], (request, response) => {
    counters.requests++;
    const parsed = wireRequestSchema.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      sendError(response, 400, {
        code: 'invalid_request',
        message: `Invalid request: ${issue.path.join('.') || 'body'}: ${issue.message}`,
        type: 'invalid_request_error',
      });
      return;
    }
    if (faults.roll(settings.storm429Percent)) {
      counters.rejected429++;
      faults.counters.injected429++;
      response.setHeader('retry-after', String(settings.retryAfterSeconds));
      sendError(response, 429, {
        code: 'RateLimitExceeded.EndpointRPMExceeded',
        message: 'Injected 429 storm. Please retry later.',
        type: 'TooManyRequests',
      });
      return;
    }
    const refusal = quota.tryStart();
    if (refusal) {
      counters.rejected429++;
      response.setHeader('retry-after', String(Math.max(1, Math.ceil(refusal.retryAfterMs / 1000))));
      response.setHeader('retry-after-ms', String(Math.max(1, Math.round(refusal.retryAfterMs))));
      sendError(response, 429, refusal.body);
      return;
    }
    counters.accepted++;
    inFlight++;
    counters.maxInFlight = Math.max(counters.maxInFlight, inFlight);
    const controller = new AbortController();
    controllers.add(controller);
    response.on('close', () => {
      if (!response.writableFinished) controller.abort();
    });
    const wire = parsed.data;
    const finish = (outcome: 'completed' | 'aborted' | 'failed') => {
      controllers.delete(controller);
      quota.finish();
      inFlight--;
      if (outcome !== 'failed') counters[outcome]++;
    };
    if (faults.roll(settings.failPercent)) {
      faults.counters.injected5xx++;
      finish('failed');
      sendError(response, 500, {
        code: 'InternalServiceError',
        message: 'Injected failure',
        type: 'InternalServerError',
      });
      return;
    }
    if (faults.roll(settings.hangPercent)) {
      // Accepted, then silence: the call holds its quota slot until the client gives up.
      faults.counters.hung++;
      controller.signal.addEventListener('abort', () => finish('aborted'), { once: true });
      return;
    }
    const fault = {
      cutAfterChunks: settings.cutAfterChunks,
      firstByteDelayMs: settings.firstByteDelayMs,
      onCut: () => faults.counters.cut++,
    };
    serveCompletion(provider, wire, response, controller.signal, fault, thinkingRequests).then(
      () => finish('completed'),
      (error: unknown) => {
        finish(controller.signal.aborted ? 'aborted' : 'failed');
        if (!controller.signal.aborted && !response.headersSent) {
          sendError(response, 500, {
            code: 'InternalServiceError',
            message: String(error),
            type: 'InternalServerError',
          });
        } else if (!response.writableEnded) {
          response.destroy();
        }
      },
    );
  });

  app.get('/sim/stats', (_request, response) => {
    response.json(stats());
  });
  // The provider's speed, changed mid-run (the latency-shift benchmark): {latencyMs?, tps?}.
  app.post('/sim/pace', express.json(), (request, response) => {
    const body = (request.body ?? {}) as { latencyMs?: unknown; tps?: unknown };
    const latencyMs = typeof body.latencyMs === 'number' ? body.latencyMs : undefined;
    const tokensPerSecond = typeof body.tps === 'number' ? body.tps : undefined;
    provider.setPace({ latencyMs, tokensPerSecond });
    response.json({ latencyMs, tps: tokensPerSecond });
  });
  // Faults switched on or off mid-run (the endpoints benchmark: a 5xx burst, then a quota used up):
  // {failPercent?, storm429Percent?, retryAfterSeconds?}.
  app.post('/sim/faults', express.json(), (request, response) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    for (const key of ['failPercent', 'storm429Percent', 'retryAfterSeconds'] as const) {
      const value = body[key];
      if (typeof value === 'number' && Number.isFinite(value) && value >= 0) settings[key] = value;
    }
    injecting = true;
    response.json({
      failPercent: settings.failPercent,
      storm429Percent: settings.storm429Percent,
      retryAfterSeconds: settings.retryAfterSeconds,
    });
  });
  app.post('/sim/reset', (_request, response) => {
    reset();
    response.json(stats());
  });
  app.use((_request: Request, response: Response) => {
    sendError(response, 404, { code: 'not_found', message: 'Unknown path', type: 'invalid_request_error' });
  });
  app.use(
    (
      error: { status?: number; type?: string; message?: string },
      _request: Request,
      response: Response,
      _next: NextFunction,
    ) => {
      const status =
        typeof error.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500;
      sendError(response, status, {
        code: error.type ?? 'invalid_request',
        message: error.message ?? 'Bad request',
        type: 'invalid_request_error',
      });
    },
  );

  function reset(): void {
    counters = { ...zeroCounters(), maxInFlight: inFlight };
    faults = new SimFaults(settings);
    quota.resetWindow();
  }

  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const displayHost = settings.host === '0.0.0.0' || settings.host === '::' ? '127.0.0.1' : settings.host;
  const url = `http://${displayHost.includes(':') ? `[${displayHost}]` : displayHost}:${port}`;

  return {
    url,
    baseUrl: `${url}/v1`,
    port,
    stats,
    reset,
    close: () =>
      new Promise<void>((resolve) => {
        for (const controller of controllers) controller.abort();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function zeroCounters(): SimServerStats {
  return { requests: 0, accepted: 0, rejected429: 0, inFlight: 0, maxInFlight: 0, completed: 0, aborted: 0 };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>;
}
