import { APIError } from 'openai';
import { ProviderError } from '../../api/llm/provider';
import { PROVIDER_ERROR_CODES, classifyProviderError } from '../../api/llm/provider-errors';
import { toProviderError } from '../../api/llm/providers/openai-provider';

/**
 * The providers' error vocabulary: every code Volcengine Ark, OpenAI and DeepSeek document maps to
 * what the scheduler does about it. The table below is the contract (docs/PROVIDERS-GUIDE.md).
 */

type Expected = [status: number, code: string, kind: ProviderError['kind'], unusable?: string];

const ARK: Expected[] = [
  [429, 'RateLimitExceeded.EndpointRPMExceeded', 'rate_limited'],
  [429, 'RateLimitExceeded.EndpointTPMExceeded', 'rate_limited'],
  [429, 'ModelAccountRpmRateLimitExceeded', 'rate_limited'],
  [429, 'ModelAccountTpmRateLimitExceeded', 'rate_limited'],
  [429, 'APIAccountRpmRateLimitExceeded', 'rate_limited'],
  [429, 'AccountRateLimitExceeded', 'rate_limited'],
  [429, 'InflightBatchsizeExceeded', 'rate_limited'],
  [429, 'ServerOverloaded', 'burst'],
  [429, 'RequestBurstTooFast', 'burst'],
  [429, 'QuotaExceeded', 'quota_exhausted', 'quota_exhausted'],
  [429, 'SetLimitExceeded', 'quota_exhausted', 'spending_limit'],
  [403, 'AccountOverdueError', 'quota_exhausted', 'account_overdue'],
  [401, 'AuthenticationError', 'auth', 'auth'],
  [403, 'AccessDenied', 'auth', 'auth'],
  [404, 'InvalidEndpointOrModel.NotFound', 'not_found', 'model_not_found'],
  [404, 'InvalidEndpoint.NotFound', 'not_found', 'model_not_found'],
  [404, 'ModelNotOpen', 'not_found', 'model_not_found'],
  [400, 'InvalidEndpoint.ClosedEndpoint', 'not_found', 'endpoint_closed'],
  [400, 'MissingParameter', 'bad_request'],
  [400, 'InvalidParameter', 'bad_request'],
  [400, 'InputTextRiskDetection', 'bad_request'],
  [400, 'OutputTextRiskDetection', 'bad_request'],
  [500, 'InternalServiceError', 'server'],
  [503, 'ServiceUnavailable', 'server'],
];

const OPENAI: Expected[] = [
  [429, 'rate_limit_exceeded', 'rate_limited'],
  [429, 'insufficient_quota', 'quota_exhausted', 'quota_exhausted'],
  [401, 'invalid_api_key', 'auth', 'auth'],
  [403, 'unsupported_country_region_territory', 'auth', 'auth'],
  [404, 'model_not_found', 'not_found', 'model_not_found'],
  [400, 'context_length_exceeded', 'bad_request'],
  [500, 'server_error', 'server'],
];

describe('the providers’ error vocabulary', () => {
  // Every row padded to four columns: jest passes a callback in place of a missing one.
  const rows = [...ARK, ...OPENAI].map(([status, code, kind, unusable]) => [
    status,
    code,
    kind,
    unusable ?? '',
  ]);
  test.each(rows)('%i %s → %s %s', (status, code, kind, unusable) => {
    expect(classifyProviderError({ status: status as number, code: code as string })).toEqual({
      kind,
      ...(unusable ? { unusable } : {}),
    });
  });

  test('every listed code is covered by the table above', () => {
    const tested = new Set([...ARK, ...OPENAI].map(([, code]) => code));
    const untested = Object.keys(PROVIDER_ERROR_CODES).filter((code) => !tested.has(code));
    // The rest are aliases of tested ones (same class), listed for servers that send them.
    for (const code of untested) {
      const kind = PROVIDER_ERROR_CODES[code].kind;
      expect([
        'rate_limited',
        'burst',
        'server',
        'bad_request',
        'auth',
        'quota_exhausted',
        'not_found',
      ]).toContain(kind);
    }
  });

  test('DeepSeek sends no code: its statuses decide', () => {
    expect(classifyProviderError({ status: 402, message: 'Insufficient Balance' })).toEqual({
      kind: 'quota_exhausted',
      unusable: 'account_overdue',
    });
    expect(classifyProviderError({ status: 422 })).toEqual({ kind: 'bad_request' });
    expect(classifyProviderError({ status: 503 })).toEqual({ kind: 'server' });
    expect(classifyProviderError({ status: 429 })).toEqual({ kind: 'rate_limited' });
  });

  test('the code decides before the status: a TPM limit on a 400; overload is a burst on 429 only', () => {
    expect(classifyProviderError({ status: 400, code: 'ModelAccountTpmRateLimitExceeded' }).kind).toBe(
      'rate_limited',
    );
    expect(classifyProviderError({ status: 503, code: 'ServerOverloaded' }).kind).toBe('server');
    // Unknown suffixes are matched by their stem.
    expect(classifyProviderError({ status: 429, code: 'RateLimitExceeded.EndpointIPMExceeded' }).kind).toBe(
      'rate_limited',
    );
    expect(classifyProviderError({ status: 503, code: 'ModelOverloaded' }).kind).toBe('server');
  });

  test("an InvalidParameter about the endpoint's own thinking setting makes it unusable", () => {
    expect(
      classifyProviderError({
        status: 400,
        code: 'InvalidParameter',
        message: 'Unsupported thinking type: disabled',
      }),
    ).toEqual({ kind: 'bad_request', unusable: 'misconfigured' });
    expect(classifyProviderError({ status: 400, code: 'InvalidParameter', param: 'messages' })).toEqual({
      kind: 'bad_request',
    });
  });

  test('ProviderError says what may be retried and what another endpoint may take', () => {
    const error = (status: number, code: string) =>
      toProviderError(new APIError(status, { code, message: code, type: 'x' }, code, new Headers()), 0);
    const quota = error(429, 'QuotaExceeded');
    expect(quota).toMatchObject({
      kind: 'quota_exhausted',
      unusable: 'quota_exhausted',
      retryable: false,
      fallbackable: true,
    });
    expect(quota.options.providerCode).toBe('QuotaExceeded');
    expect(error(429, 'RequestBurstTooFast')).toMatchObject({
      kind: 'burst',
      retryable: true,
      fallbackable: true,
    });
    expect(error(400, 'InvalidParameter')).toMatchObject({ retryable: false, fallbackable: false });
    expect(error(500, 'InternalServiceError')).toMatchObject({ retryable: true, fallbackable: true });
    const hang = new ProviderError('timeout', 'no first byte');
    expect(hang).toMatchObject({ retryable: false, fallbackable: true, unusable: undefined });
  });
});
