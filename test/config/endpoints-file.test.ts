import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, parseConfig } from '../../config';
import { parseEndpointsText } from '../../config/endpoints-file';

const GOOD = `
endpoints:
  - name: lite
    baseUrl: https://ark.cn-beijing.volces.com/api/v3
    apiKey: \${ARK_API_KEY}
    model: doubao-lite
    maxConcurrent: 20
    maxRpm: 600
    maxTpm: 0
    thinking: disabled
  - name: pro
    baseUrl: https://ark.cn-beijing.volces.com/api/v3
    apiKey: \${ARK_API_KEY}
    model: doubao-pro
    maxConcurrent: 10
    maxRpm: 300
    maxTpm: 200000
  - name: local
    provider: sim
    maxConcurrent: 5
    maxRpm: 60
    latencyMs: 20
    tokensPerSecond: 500
routes:
  host: [lite, pro]
  planner: [pro, lite]
  critic: [lite]
  reporter: [pro]
  default: [pro]
`;

const ENV = { ARK_API_KEY: 'ark-secret' };

/** GOOD with one line replaced: `from` must occur in it. */
function withLine(from: string, to: string): string {
  expect(GOOD).toContain(from);
  return GOOD.replace(from, to);
}

function errorOf(text: string, env: Record<string, string> = ENV): string {
  try {
    parseEndpointsText(text, env);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected the file to be refused');
}

describe('LLM_ENDPOINTS_FILE', () => {
  test('a good file: endpoints with their quotas, ${VAR} expanded, routes in fallback order', () => {
    const setup = parseEndpointsText(GOOD, ENV);
    expect(setup.endpoints.map((endpoint) => endpoint.name)).toEqual(['lite', 'pro', 'local']);
    expect(setup.endpoints[0]).toEqual({
      name: 'lite',
      provider: 'openai',
      baseUrl: 'https://ark.cn-beijing.volces.com/api/v3',
      apiKey: 'ark-secret',
      model: 'doubao-lite',
      maxConcurrent: 20,
      maxRpm: 600,
      maxTpm: 0,
      thinking: 'disabled',
    });
    expect(setup.endpoints[1]).toMatchObject({ maxTpm: 200_000, thinking: undefined });
    expect(setup.endpoints[2]).toMatchObject({
      provider: 'sim',
      model: 'sim-local',
      sim: { latencyMs: 20, tokensPerSecond: 500 },
    });
    expect(setup.routes).toEqual({
      host: ['lite', 'pro'],
      planner: ['pro', 'lite'],
      critic: ['lite'],
      reporter: ['pro'],
      default: ['pro'],
    });
  });

  test('agents without a route use `default`; without `default`, the first endpoint', () => {
    const setup = parseEndpointsText(
      GOOD.slice(0, GOOD.indexOf('routes:')) + 'routes:\n  planner: [pro]\n',
      ENV,
    );
    expect(setup.routes).toMatchObject({
      host: ['lite'],
      planner: ['pro'],
      critic: ['lite'],
      default: ['lite'],
    });
  });

  test('JSON is accepted too', () => {
    const json = JSON.stringify({
      endpoints: [{ name: 'a', provider: 'sim', maxConcurrent: 2, maxRpm: 10 }],
      routes: { default: ['a'] },
    });
    expect(parseEndpointsText(json, {}).endpoints[0]).toMatchObject({ name: 'a', maxTpm: 0 });
  });

  test.each([
    ['maxRpm: 300', 'maxRpm: -5', 'LLM_ENDPOINTS_FILE endpoints[1].maxRpm: expected a positive integer'],
    ['maxRpm: 300', 'maxRpm: "abc"', 'LLM_ENDPOINTS_FILE endpoints[1].maxRpm: expected a positive integer'],
    [
      'maxConcurrent: 20',
      'maxConcurrent: 2.5',
      'LLM_ENDPOINTS_FILE endpoints[0].maxConcurrent: expected a positive integer',
    ],
    [
      '    maxConcurrent: 20\n',
      '',
      'LLM_ENDPOINTS_FILE endpoints[0].maxConcurrent: expected a positive integer',
    ],
    [
      'maxTpm: 200000',
      'maxTpm: -1',
      'LLM_ENDPOINTS_FILE endpoints[1].maxTpm: expected 0 or a positive integer',
    ],
    [
      'thinking: disabled',
      'thinking: off',
      'LLM_ENDPOINTS_FILE endpoints[0].thinking: expected enabled, disabled or auto',
    ],
    ['name: pro', 'name: lite', 'LLM_ENDPOINTS_FILE endpoints[1].name: "lite" is used twice'],
    [
      'name: pro',
      'name: "pro endpoint"',
      'LLM_ENDPOINTS_FILE endpoints[1].name: expected 1-40 letters, digits or _ . -',
    ],
    [
      '    baseUrl: https://ark.cn-beijing.volces.com/api/v3\n    apiKey: ${ARK_API_KEY}\n    model: doubao-pro',
      '    apiKey: ${ARK_API_KEY}\n    model: doubao-pro',
      'LLM_ENDPOINTS_FILE endpoints[1].baseUrl: expected a URL (required for provider openai)',
    ],
    [
      'model: doubao-lite',
      'model: ""',
      'LLM_ENDPOINTS_FILE endpoints[0].model: expected a model or endpoint id',
    ],
    ['provider: sim', 'provider: azure', 'LLM_ENDPOINTS_FILE endpoints[2].provider: expected openai or sim'],
    [
      'tokensPerSecond: 500',
      'tokensPerSecond: 500\n    maxRPM: 60',
      'LLM_ENDPOINTS_FILE endpoints[2]: unknown field "maxRPM"',
    ],
    [
      'critic: [lite]',
      'critic: [lyte]',
      'LLM_ENDPOINTS_FILE routes.critic[0]: "lyte" is not an endpoint (lite, pro, local)',
    ],
    ['critic: [lite]', 'critic: []', 'LLM_ENDPOINTS_FILE routes.critic: expected at least one endpoint name'],
    ['critic: [lite]', 'writer: [lite]', 'LLM_ENDPOINTS_FILE routes: unknown field "writer"'],
  ])('%#: a bad field is refused with one line naming it (%s)', (from, to, message) => {
    const error = errorOf(withLine(from, to));
    expect(error).toBe(message);
    expect(error).not.toContain('\n');
  });

  test('an unset ${VAR} names the field, never a value', () => {
    expect(errorOf(GOOD, {})).toBe(
      'LLM_ENDPOINTS_FILE endpoints[0].apiKey: ${ARK_API_KEY} is not set in the environment',
    );
  });

  test('no endpoints, or not YAML at all', () => {
    expect(errorOf('endpoints: []\n')).toBe('LLM_ENDPOINTS_FILE endpoints: expected at least one endpoint');
    expect(errorOf('endpoints: [a\n')).toMatch(/^LLM_ENDPOINTS_FILE is not valid YAML or JSON: [^\n]+$/);
  });

  test('through the config: a bad file is a ConfigError of one line; a good one becomes config.llm', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-endpoints-'));
    try {
      const file = path.join(dir, 'endpoints.yml');
      fs.writeFileSync(file, withLine('maxRpm: 300', 'maxRpm: 0'));
      expect(() => parseConfig({ ...ENV, LLM_ENDPOINTS_FILE: file })).toThrow(
        new ConfigError('LLM_ENDPOINTS_FILE endpoints[1].maxRpm: expected a positive integer'),
      );
      expect(() => parseConfig({ LLM_ENDPOINTS_FILE: path.join(dir, 'missing.yml') })).toThrow(ConfigError);
      fs.writeFileSync(file, GOOD);
      const config = parseConfig({ ...ENV, LLM_ENDPOINTS_FILE: file });
      expect(config.llm.endpoints.map((endpoint) => endpoint.model)).toEqual([
        'doubao-lite',
        'doubao-pro',
        'sim-local',
      ]);
      expect(config.llm.routes.host).toEqual(['lite', 'pro']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('config/endpoints.example.yml is a valid file', () => {
    const example = path.join(__dirname, '../../config/endpoints.example.yml');
    const setup = parseConfig({
      LLM_ENDPOINTS_FILE: example,
      ARK_API_KEY: 'ark',
      ARK_LITE_ENDPOINT_ID: 'ep-lite',
      ARK_PRO_ENDPOINT_ID: 'ep-pro',
      DEEPSEEK_API_KEY: 'deepseek',
    }).llm;
    expect(setup.endpoints.map((endpoint) => `${endpoint.name}:${endpoint.model}`)).toEqual([
      'lite:ep-lite',
      'pro:ep-pro',
      'deepseek:deepseek-chat',
    ]);
    expect(setup.routes.critic).toEqual(['lite', 'deepseek']);
  });

  test('without the file: one endpoint `default` of the LLM_* settings, used by every agent', () => {
    const config = parseConfig({ LLM_MAX_CONCURRENT: '7', LLM_MAX_RPM: '70', LLM_MAX_TPM: '700' });
    expect(config.llm.endpoints).toEqual([
      expect.objectContaining({
        name: 'default',
        provider: 'sim',
        model: 'sim',
        maxConcurrent: 7,
        maxRpm: 70,
        maxTpm: 700,
      }),
    ]);
    expect(config.llm.routes).toEqual({
      host: ['default'],
      planner: ['default'],
      critic: ['default'],
      reporter: ['default'],
      default: ['default'],
    });
  });
});
