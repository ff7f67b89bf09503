import OpenAI, { type ClientOptions } from 'openai';

/**
 * The official OpenAI client with every setting it would otherwise take from the environment
 * given explicitly, so config/ stays the only reader of process.env. openai@6 reads OPENAI_BASE_URL,
 * OPENAI_API_KEY, OPENAI_ADMIN_KEY, OPENAI_ORG_ID, OPENAI_PROJECT_ID, OPENAI_WEBHOOK_SECRET and
 * OPENAI_LOG only when the option is absent, but merges OPENAI_CUSTOM_HEADERS into every request
 * whatever the options say: the constructor's result is replaced by our own headers.
 */
export class ExplicitOpenAIClient extends OpenAI {
  constructor(
    options: ClientOptions & { baseURL: string; apiKey: string; defaultHeaders?: Record<string, string> },
  ) {
    const defaultHeaders = options.defaultHeaders ?? {};
    super({
      adminAPIKey: null,
      organization: null,
      project: null,
      webhookSecret: null,
      logLevel: 'off',
      ...options,
      defaultHeaders,
    });
    this._options = { ...this._options, defaultHeaders };
  }
}
