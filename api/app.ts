import express, { type Express } from 'express';
import type { Config } from '../config';
import type { ChatService } from './agents/chat-service';
import type { Logger } from './logger';
import type { Store } from './store/store';
import type { RunEventLog } from './streaming/run-event-log';
import type { RunRegistry } from './streaming/run-registry';
import type { SseStreaming } from './streaming/sse-streaming';
import { chatRouter } from './routes/chat';
import { conversationsRouter } from './routes/conversations';
import { CORS_PATHS, corsMiddleware } from './routes/cors';
import { errorHandler, notFoundHandler } from './routes/error-handler';
import { requestContext } from './routes/request-context';
import { runsRouter } from './routes/runs';
import { sseRouter } from './routes/sse';

export interface AppDependencies {
  config: Config;
  logger: Logger;
  store: Store;
  chat: ChatService;
  runs: RunRegistry;
  sse: SseStreaming;
  /** The shared run event log (REDIS_URL): resume of runs other instances own. */
  eventLog?: RunEventLog;
  /** Routers of the monitoring areas (queue, tool-system, health, metrics, sse), mounted under /api or at the root. */
  apiRouters?: express.Router[];
  rootRouters?: express.Router[];
  /** Routers with their own body parser and error shape (the /v1 gateway), mounted before the JSON parser. */
  ownBodyRouters?: express.Router[];
}

/** The Express application: routers per area, one JSON error shape for everything. */
export function createApp(deps: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(requestContext(deps.logger, app.request));
  const corsHandler = corsMiddleware(deps.config.corsOrigins);
  if (corsHandler) app.use(CORS_PATHS, corsHandler);
  for (const router of deps.ownBodyRouters ?? []) app.use(router);
  // 8000 characters of CJK text is ~24 KB in UTF-8; 64 KB leaves room and refuses absurd bodies early.
  app.use(express.json({ limit: '64kb' }));
  const api = express.Router();
  api.use(chatRouter({ chat: deps.chat, config: deps.config, sse: deps.sse, logger: deps.logger }));
  api.use(conversationsRouter({ store: deps.store, config: deps.config }));
  api.use(runsRouter({ runs: deps.runs, sse: deps.sse, config: deps.config, eventLog: deps.eventLog }));
  api.use(sseRouter({ sse: deps.sse }));
  for (const router of deps.apiRouters ?? []) api.use(router);
  app.use('/api', api);
  for (const router of deps.rootRouters ?? []) app.use(router);
  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
