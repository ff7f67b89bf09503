import type { ProviderFailureKind, UnusableReason } from './provider';

/**
 * The providers' error vocabulary in one place: every code Volcengine Ark (and BytePlus ModelArk),
 * OpenAI and DeepSeek document for chat completions, mapped to what the scheduler does about it
 * (ProviderFailureKind; docs/PROVIDERS-GUIDE.md has the table with the reasons). The body's code
 * decides before the HTTP status: Ark reports a TPM limit on a 400 now and then, and its burst
 * protection (`ServerOverloaded`) on a 429 as well as on a 503.
 */

export interface ProviderErrorClass {
  kind: ProviderFailureKind;
  /** The endpoint refuses every call until a person acts. */
  unusable?: UnusableReason;
}

const RATE_LIMITED: ProviderErrorClass = { kind: 'rate_limited' };
const BURST: ProviderErrorClass = { kind: 'burst' };
const SERVER: ProviderErrorClass = { kind: 'server' };
const BAD_REQUEST: ProviderErrorClass = { kind: 'bad_request' };
const AUTH: ProviderErrorClass = { kind: 'auth', unusable: 'auth' };
const MODEL_NOT_FOUND: ProviderErrorClass = { kind: 'not_found', unusable: 'model_not_found' };

/** Exact codes, as the providers send them in `error.code` (or `error.type`). */
export const PROVIDER_ERROR_CODES: Readonly<Record<string, ProviderErrorClass>> = {
  // Volcengine Ark: 429 TooManyRequests, transient.
  'RateLimitExceeded.EndpointRPMExceeded': RATE_LIMITED,
  'RateLimitExceeded.EndpointTPMExceeded': RATE_LIMITED,
  ModelAccountRpmRateLimitExceeded: RATE_LIMITED,
  ModelAccountTpmRateLimitExceeded: RATE_LIMITED,
  APIAccountRpmRateLimitExceeded: RATE_LIMITED,
  APIAccountTpmRateLimitExceeded: RATE_LIMITED,
  AccountRateLimitExceeded: RATE_LIMITED,
  InflightBatchsizeExceeded: RATE_LIMITED,
  RateLimitExceeded: RATE_LIMITED,
  TooManyRequests: RATE_LIMITED,
  // Ark's burst protection: a sudden surge refused below the RPM (older models / newer models).
  ServerOverloaded: BURST,
  RequestBurstTooFast: BURST,
  // Ark, not transient: a usage quota used up, a spending limit set in the console, an unpaid bill.
  QuotaExceeded: { kind: 'quota_exhausted', unusable: 'quota_exhausted' },
  SetLimitExceeded: { kind: 'quota_exhausted', unusable: 'spending_limit' },
  AccountOverdueError: { kind: 'quota_exhausted', unusable: 'account_overdue' },
  // Ark: credentials and access.
  AuthenticationError: AUTH,
  AccessDenied: AUTH,
  'OperationDenied.ServiceNotOpen': AUTH,
  'OperationDenied.ServiceOverdue': { kind: 'quota_exhausted', unusable: 'account_overdue' },
  // Ark: the endpoint or model named by LLM_MODEL.
  'InvalidEndpointOrModel.NotFound': MODEL_NOT_FOUND,
  'InvalidEndpoint.NotFound': MODEL_NOT_FOUND,
  ModelNotOpen: MODEL_NOT_FOUND,
  'InvalidEndpoint.ClosedEndpoint': { kind: 'not_found', unusable: 'endpoint_closed' },
  // Ark: this request is wrong (its parameters, or content the safety check refused).
  MissingParameter: BAD_REQUEST,
  InvalidParameter: BAD_REQUEST,
  InputTextRiskDetection: BAD_REQUEST,
  InputImageRiskDetection: BAD_REQUEST,
  OutputTextRiskDetection: BAD_REQUEST,
  OutputImageRiskDetection: BAD_REQUEST,
  SensitiveContentDetected: BAD_REQUEST,
  // Ark: server side.
  InternalServiceError: SERVER,
  ServiceUnavailable: SERVER,
  ModelLoading: SERVER,
  // OpenAI (and the many servers that copy its codes).
  rate_limit_exceeded: RATE_LIMITED,
  insufficient_quota: { kind: 'quota_exhausted', unusable: 'quota_exhausted' },
  billing_hard_limit_reached: { kind: 'quota_exhausted', unusable: 'spending_limit' },
  invalid_api_key: AUTH,
  invalid_authentication: AUTH,
  unsupported_country_region_territory: AUTH,
  model_not_found: MODEL_NOT_FOUND,
  context_length_exceeded: BAD_REQUEST,
  invalid_request_error: BAD_REQUEST,
  server_error: SERVER,
};

/** A parameter the provider rejected that belongs to the endpoint's settings, not the request. */
const ENDPOINT_SETTING = /thinking|model/i;
/** Codes seen with suffixes or casing we have not listed: matched by their stem. */
const RATE_LIMIT_STEM = /RateLimit|rate_limit|TooManyRequests/i;
const OVERLOAD_STEM = /Overloaded|BurstTooFast/i;

/**
 * Classifies one provider error from its status, its code and type, its `param` and message.
 * DeepSeek sends no code: its statuses decide (402 insufficient balance, 422 invalid parameters,
 * 503 overloaded).
 */
export function classifyProviderError(error: {
  status?: number;
  code?: string;
  type?: string;
  param?: string;
  message?: string;
}): ProviderErrorClass {
  const { status } = error;
  for (const marker of [error.code, error.type]) {
    if (!marker) continue;
    const known = PROVIDER_ERROR_CODES[marker];
    // Burst protection is a 429; the same code on a 5xx is a server in trouble (the breaker's).
    if (known?.kind === 'burst' && status !== undefined && status !== 429) return SERVER;
    if (known) return settingOrRequest(known, error);
    if (OVERLOAD_STEM.test(marker)) return status === 429 ? BURST : SERVER;
    if (RATE_LIMIT_STEM.test(marker)) return RATE_LIMITED;
  }
  if (status === undefined) return SERVER;
  if (status === 429) return RATE_LIMITED;
  if (status === 401 || status === 403) return AUTH;
  if (status === 402) return { kind: 'quota_exhausted', unusable: 'account_overdue' };
  if (status === 404) return MODEL_NOT_FOUND;
  if (status === 408 || status === 409 || status >= 500) return SERVER;
  return settingOrRequest(BAD_REQUEST, error);
}

/**
 * A bad request names one call's mistake, except when the rejected parameter is one the endpoint's
 * settings add to every call (Ark's "Unsupported thinking type" for a model that cannot think):
 * then every call fails alike, and the endpoint is misconfigured until a person changes it.
 */
function settingOrRequest(
  known: ProviderErrorClass,
  error: { param?: string; message?: string },
): ProviderErrorClass {
  if (known.kind !== 'bad_request') return known;
  const named = `${error.param ?? ''} ${error.message ?? ''}`;
  return /thinking/i.test(named) || (error.param !== undefined && ENDPOINT_SETTING.test(error.param))
    ? { kind: 'bad_request', unusable: 'misconfigured' }
    : known;
}

/** What an operator reads for each reason (health, alerts, the chat's error message). */
export const UNUSABLE_REASON_TEXT: Readonly<Record<UnusableReason, string>> = {
  quota_exhausted: 'its usage quota is used up',
  spending_limit: 'a spending limit set in the console was reached',
  account_overdue: 'the account has an overdue balance',
  auth: 'the API key was refused',
  model_not_found: 'the model or endpoint does not exist or is not activated',
  endpoint_closed: 'the endpoint is closed',
  misconfigured: "the endpoint's settings are rejected (e.g. its thinking mode)",
};
