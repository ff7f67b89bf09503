import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testConfig } from '../../config';

describe('caller keys: API_KEYS and API_KEYS_FILE', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-keys-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  test('plain key:userId pairs still work, at the default class with no own limits', () => {
    const config = testConfig({ API_KEYS: 'k1:alice,k2:bob' });
    expect([...config.apiKeys]).toEqual([
      ['k1', 'alice'],
      ['k2', 'bob'],
    ]);
    expect(config.callerKeys.get('k1')).toEqual({
      caller: 'alice',
      priorityClass: 'interactive',
      limits: {},
    });
  });

  test('the compact form may name a class', () => {
    const config = testConfig({ API_KEYS: 'k1:alice,k9:nightly:batch' });
    expect(config.callerKeys.get('k9')).toEqual({ caller: 'nightly', priorityClass: 'batch', limits: {} });
    expect(() => testConfig({ API_KEYS: 'k1:alice:urgent' })).toThrow(/API_KEYS=<hidden/);
  });

  test('a YAML keys file adds callers with classes and limits; JSON works too', () => {
    const yaml = write(
      'keys.yaml',
      'keys:\n  - key: sk-search-service\n    caller: search\n    class: batch\n    limits: { rpm: 60, tpm: 100000, concurrency: 4 }\n',
    );
    const config = testConfig({ API_KEYS: 'k1:alice', API_KEYS_FILE: yaml });
    expect(config.callerKeys.get('sk-search-service')).toEqual({
      caller: 'search',
      priorityClass: 'batch',
      limits: { rpm: 60, tpm: 100000, concurrency: 4 },
    });
    expect(config.apiKeys.get('sk-search-service')).toBe('search');
    expect(config.apiKeys.get('k1')).toBe('alice');
    const json = write('keys.json', JSON.stringify({ keys: [{ key: 'sk-notebooks', caller: 'notebooks' }] }));
    expect(testConfig({ API_KEYS_FILE: json }).callerKeys.get('sk-notebooks')?.priorityClass).toBe(
      'interactive',
    );
  });

  test('a bad keys file stops the start with one line naming the field', () => {
    const badClass = write(
      'bad-class.yaml',
      'keys:\n  - key: sk-12345678\n    caller: x\n    class: urgent\n',
    );
    expect(() => testConfig({ API_KEYS_FILE: badClass })).toThrow(
      /^Invalid configuration: API_KEYS_FILE=".*bad-class.yaml" — keys\[0\]\.class: must be "interactive" or "batch"$/,
    );
    const badLimit = write(
      'bad-limit.yaml',
      'keys:\n  - key: sk-12345678\n    caller: x\n    limits: { rpm: 0 }\n',
    );
    expect(() => testConfig({ API_KEYS_FILE: badLimit })).toThrow(
      /keys\[0\]\.limits\.rpm: must be at least 1/,
    );
    const unknownField = write('bad-field.yaml', 'keys:\n  - key: sk-12345678\n    caller: x\n    prio: 1\n');
    expect(() => testConfig({ API_KEYS_FILE: unknownField })).toThrow(/keys\[0\]/);
    expect(() => testConfig({ API_KEYS_FILE: path.join(dir, 'missing.yaml') })).toThrow(
      /cannot be read \(ENOENT\)/,
    );
    const notYaml = write('broken.yaml', 'keys: [\n');
    expect(() => testConfig({ API_KEYS_FILE: notYaml })).toThrow(/not valid YAML or JSON/);
  });

  test('LLM_PRIORITY_ORDER may place the gateway classes among the agents', () => {
    const config = testConfig({ LLM_PRIORITY_ORDER: 'host,interactive,planner,critic,reporter,batch' });
    expect(config.llm.priorityOrder).toEqual([
      'host',
      'interactive',
      'planner',
      'critic',
      'reporter',
      'batch',
    ]);
    expect(() => testConfig({ LLM_PRIORITY_ORDER: 'host,planner,critic,reporter,host' })).toThrow(
      /LLM_PRIORITY_ORDER/,
    );
    expect(() => testConfig({ LLM_PRIORITY_ORDER: 'host,planner,critic,reporter,urgent' })).toThrow(
      /LLM_PRIORITY_ORDER/,
    );
  });
});
