import { ConfigError } from '../../../config';
import type { Config } from '../../../config';
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
