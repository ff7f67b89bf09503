import { ConfigError } from '../../../config';
import type { Config } from '../../../config';
import type { EndpointConfig } from '../../../config/endpoints-file';
import { systemClock } from '../../clock';
import type { Clock } from '../../clock';
import type { Provider } from '../provider';
import { OpenAIProvider } from './openai-provider';
import { SimProvider } from './sim-provider';

/** The provider LLM_PROVIDER names: the in-process simulated model, or an OpenAI-compatible API. */
export function createProvider(config: Pick<Config, 'llm' | 'sim'>, clock: Clock = systemClock): Provider {
  if (config.llm.provider === 'openai') {
    // config/ guarantees both for LLM_PROVIDER=openai; the check keeps the types honest.
    if (!config.llm.baseUrl || !config.llm.model) {
      throw new ConfigError('Invalid configuration: LLM_PROVIDER=openai needs LLM_BASE_URL and LLM_MODEL');
    }
    return new OpenAIProvider({
      baseUrl: config.llm.baseUrl,
      apiKey: config.llm.apiKey,
      model: config.llm.model,
      maxOutputTokens: config.llm.maxOutputTokens,
      thinking: config.llm.thinking,
      chunkIncludeUsage: config.llm.chunkIncludeUsage,
    });
  }
  return new SimProvider({
    latencyMs: config.sim.latencyMs,
    tokensPerSecond: config.sim.tokensPerSecond,
    // LLM_THINKING=enabled (or auto) makes the simulated model think aloud first, as Ark's do.
    thinking: config.llm.thinking === 'enabled' || config.llm.thinking === 'auto',
    clock,
  });
}

/** The provider of one endpoint of LLM_ENDPOINTS_FILE: an OpenAI-compatible API, or the simulated model. */
export function createEndpointProvider(
  endpoint: EndpointConfig,
  config: Pick<Config, 'llm' | 'sim'>,
  clock: Clock = systemClock,
): Provider {
  if (endpoint.provider === 'openai') {
    if (!endpoint.baseUrl) {
      throw new ConfigError(
        `Invalid configuration: LLM_ENDPOINTS_FILE endpoint ${endpoint.name} needs a baseUrl`,
      );
    }
    return new OpenAIProvider({
      baseUrl: endpoint.baseUrl,
      apiKey: endpoint.apiKey,
      model: endpoint.model,
      maxOutputTokens: config.llm.maxOutputTokens,
      thinking: endpoint.thinking,
      chunkIncludeUsage: config.llm.chunkIncludeUsage,
    });
  }
  return new SimProvider({
    latencyMs: endpoint.sim?.latencyMs ?? config.sim.latencyMs,
    tokensPerSecond: endpoint.sim?.tokensPerSecond ?? config.sim.tokensPerSecond,
    thinking: endpoint.thinking === 'enabled' || endpoint.thinking === 'auto',
    clock,
  });
}
