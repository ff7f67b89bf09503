import express, { Router, type Request, type Response } from 'express';
import type { Config } from '../../config';
import { AppError } from '../errors';
import type { Logger } from '../logger';
import { resolveCaller } from './caller';
import { parseCompletionBody } from './completion-request';
import { openAIErrorHandler } from './openai-errors';
import { serveProviderCompletion, type ProviderCompletionDeps } from './provider-completion';
import { TROUPE_MODEL, serveTroupeCompletion, type TroupeCompletionDeps } from './troupe-completion';

export interface GatewayRouterDeps extends ProviderCompletionDeps, TroupeCompletionDeps {
  config: Config;
  logger: Logger;
}

/** A conversation's history can be long: more room than /api/chat's single message. */
const BODY_LIMIT = '2mb';

/**
 * The OpenAI-compatible gateway, mounted at the root: `POST /v1/chat/completions` and
 * `GET /v1/models` (docs/GATEWAY.md). Errors in OpenAI's shape (openai-errors.ts).
 */
export function gatewayRouter(deps: GatewayRouterDeps): Router {
  const router = Router();
  const v1 = Router();
  v1.use(express.json({ limit: BODY_LIMIT }));

  v1.get('/models', (req: Request, res: Response) => {
    resolveCaller(req, deps.config);
    const created = Math.floor(Date.now() / 1000);
    const data = [...deps.models.list(), TROUPE_MODEL].map((id) => ({
      id,
      object: 'model',
      created,
      owned_by: id === TROUPE_MODEL ? 'troupe' : 'provider',
    }));
    res.type('application/json').end(JSON.stringify({ object: 'list', data }));
  });

  v1.post('/chat/completions', async (req: Request, res: Response) => {
    const caller = resolveCaller(req, deps.config);
    const body = parseCompletionBody(req.body ?? undefined);
    if (body.model === TROUPE_MODEL) {
      await serveTroupeCompletion(req, res, body, caller, deps);
      return;
    }
    if (!deps.models.serves(body.model)) {
      throw new AppError(
        'not_found',
        `The model \`${body.model}\` does not exist here; GET /v1/models lists the models you can use`,
      );
    }
    await serveProviderCompletion(req, res, body, caller, deps);
  });

  v1.use((req: Request) => {
    throw new AppError('not_found', `No route for ${req.method} /v1${req.path}`);
  });
  v1.use(openAIErrorHandler(deps.logger));
  router.use('/v1', v1);
  return router;
}
