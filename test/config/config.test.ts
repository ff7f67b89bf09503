import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError, parseConfig } from '../../config';
import { configSchema } from '../../config/schema';

describe('configuration', () => {
  test('defaults follow the brief', () => {
    const config = parseConfig({});
    expect(config.port).toBe(3000);
    expect(config.llm).toMatchObject({
      provider: 'sim',
      maxConcurrent: 50,
      maxRpm: 500,
      timeoutMs: 60000,
      queueMax: 5000,
      priorityOrder: ['host', 'planner', 'critic', 'reporter'],
    });
    expect(config.sse).toMatchObject({ maxConcurrent: 200, heartbeatMs: 15000 });
    expect(config.search).toMatchObject({ maxConcurrent: 100, maxPerMinute: 300, cacheTtlSeconds: 600 });
    expect(config.mongo).toMatchObject({ maxPoolSize: 100, minPoolSize: 10 });
    expect(config.agents).toEqual({
      criticMaxRounds: 1,
      toolMaxRounds: 3,
      parallel: 'auto',
      toolMaxParallel: 4,
    });
    expect(config.llmCache).toEqual({ enabled: true, ttlSeconds: 3600, maxBytes: 64 * 1024 * 1024 });
    expect(config.redisKeyPrefix).toBe('troupe:');
    expect(config.heapGrowingPercent).toBe(50);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.llm)).toBe(true);
  });

  test('values come from the given environment', () => {
    const config = parseConfig({
      PORT: '8080',
      LLM_MAX_CONCURRENT: '7',
      LLM_PRIORITY_ORDER: 'reporter, critic,planner,host',
      API_KEYS: 'k1:alice,k2:bob',
    });
    expect(config.port).toBe(8080);
    expect(config.llm.maxConcurrent).toBe(7);
    expect(config.llm.priorityOrder).toEqual(['reporter', 'critic', 'planner', 'host']);
    expect(config.apiKeys.get('k2')).toBe('bob');
  });

  test.each([
    ['LLM_MAX_CONCURRENT', 'abc', /LLM_MAX_CONCURRENT="abc" — expected an integer from 1/],
    ['PORT', '-1', /PORT="-1" — expected an integer from 0 to 65535/],
    ['LLM_MAX_RPM', '0', /LLM_MAX_RPM="0"/],
    ['LLM_PROVIDER', 'gpt', /LLM_PROVIDER="gpt"/],
    ['LLM_PRIORITY_ORDER', 'host,planner', /LLM_PRIORITY_ORDER="host,planner" — expected the four agents/],
    ['SSE_HEARTBEAT_MS', '1.5', /SSE_HEARTBEAT_MS="1.5"/],
    ['API_KEYS', 'sk-secret', /API_KEYS=<hidden, 9 characters> — expected comma-separated key:userId pairs/],
    ['LLM_BASE_URL', 'not a url', /LLM_BASE_URL="not a url" — expected a URL/],
  ])('%s=%s is refused with one line naming it', (name, value, pattern) => {
    let caught: unknown;
    try {
      parseConfig({ [name]: value });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as Error).message;
    expect(message).toMatch(pattern);
    expect(message.split('\n')).toHaveLength(1);
  });

  test('openai provider needs its base URL and model', () => {
    expect(() => parseConfig({ LLM_PROVIDER: 'openai' })).toThrow(/LLM_BASE_URL/);
    expect(() =>
      parseConfig({ LLM_PROVIDER: 'openai', LLM_BASE_URL: 'https://ark.cn-beijing.volces.com/api/v3' }),
    ).toThrow(/LLM_MODEL/);
  });

  test('.env.example lists every setting, and only those', () => {
    const example = fs.readFileSync(path.join(__dirname, '../../.env.example'), 'utf8');
    const listed = [...example.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]).sort();
    expect(listed).toEqual(Object.keys(configSchema.shape).sort());
  });

  test('the server refuses to start on a bad value, printing one line', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'server.ts'], {
      cwd: path.join(__dirname, '../..'),
      env: { ...process.env, LLM_MAX_CONCURRENT: 'abc', PORT: '0' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(
      'Invalid configuration: LLM_MAX_CONCURRENT="abc" — expected an integer from 1 to 100000',
    );
  });
});
