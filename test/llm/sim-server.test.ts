import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseSimServerArgs, SimArgumentError } from '../../api/llm/sim/sim-args';
import { startSimServer } from '../../api/llm/sim/sim-server';
import type { SimServer } from '../../api/llm/sim/sim-server';

const ROOT = path.join(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

let sim: SimServer | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const BODY = {
  model: 'troupe-sim',
  messages: [
    { role: 'system', content: 'You are the Reporter of Troupe.' },
    { role: 'user', content: 'What is Rust?' },
  ],
};

function post(url: string, body: unknown) {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('sim-llm server', () => {
  it('streams OpenAI chunks: role first, content, finish, usage (choices []), [DONE]', async () => {
    sim = await startSimServer({ port: 0, latencyMs: 1, tps: 10_000 });
    const response = await post(sim.url, { ...BODY, stream: true, stream_options: { include_usage: true } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await response.text()).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.replace(/^data: /, '')));
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(
      chunks.every((chunk) => chunk.object === 'chat.completion.chunk' && chunk.id === chunks[0].id),
    ).toBe(true);
    const finish = chunks.at(-2);
    expect(finish.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
    const usage = chunks.at(-1);
    expect(usage.choices).toEqual([]);
    expect(usage.usage.total_tokens).toBe(usage.usage.prompt_tokens + usage.usage.completion_tokens);
  });

  it('omits the usage chunk unless include_usage is asked for', async () => {
    sim = await startSimServer({ port: 0, latencyMs: 1, tps: 10_000 });
    const text = await (await post(sim.url, { ...BODY, stream: true })).text();
    expect(text).not.toContain('"usage"');
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('never lets more than `concurrency` calls run: the burst excess gets 429 + Retry-After', async () => {
    sim = await startSimServer({ port: 0, concurrency: 3, latencyMs: 500, tps: 10_000 });
    const responses = await Promise.all(Array.from({ length: 10 }, () => post(sim!.url, BODY)));
    const statuses = responses.map((response) => response.status).sort();
    expect(statuses.filter((status) => status === 200)).toHaveLength(3);
    const refused = responses.find((response) => response.status === 429)!;
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toMatchObject({
      error: { type: 'TooManyRequests', code: expect.stringMatching(/^RateLimitExceeded\./) },
    });
    await Promise.all(
      responses.filter((response) => response !== refused).map((response) => response.text()),
    );
    expect(sim.stats()).toEqual({
      requests: 10,
      accepted: 3,
      rejected429: 7,
      inFlight: 0,
      maxInFlight: 3,
      completed: 3,
      aborted: 0,
    });
  });

  it('answers bad input with OpenAI-style 400s, unknown paths with 404', async () => {
    sim = await startSimServer({ port: 0, latencyMs: 1 });
    const invalid = await post(sim.url, { model: 'm', messages: 'nope' });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({
      error: { type: 'invalid_request_error', message: expect.stringMatching(/messages/) },
    });
    expect((await post(sim.url, '{not json')).status).toBe(400);
    expect((await fetch(`${sim.url}/v1/models/nothing`)).status).toBe(404);
  });

  it('accepts content parts and the Ark and bare paths', async () => {
    sim = await startSimServer({ port: 0, latencyMs: 1, tps: 10_000 });
    for (const route of ['/api/v3/chat/completions', '/chat/completions']) {
      const response = await fetch(`${sim.url}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'm',
          messages: [{ role: 'user', content: [{ type: 'text', text: '什么是 Rust？' }] }],
        }),
      });
      const body = (await response.json()) as { object: string; choices: { message: { content: string } }[] };
      expect(body.object).toBe('chat.completion');
      expect(body.choices[0].message.content).toMatch(/^关于「什么是 Rust？」/);
    }
  });
});

describe('sim-llm flags', () => {
  it('parses every flag, in both spellings', () => {
    expect(
      parseSimServerArgs([
        '--port',
        '0',
        '--rpm=30',
        '--concurrency',
        '2',
        '--latency-ms',
        '0',
        '--tps',
        '5',
        '--host',
        '0.0.0.0',
      ]),
    ).toEqual({ port: 0, rpm: 30, concurrency: 2, latencyMs: 0, tps: 5, host: '0.0.0.0' });
    expect(parseSimServerArgs([])).toEqual({});
  });

  it.each([
    [['--rpm', 'abc'], /--rpm="abc" — expected an integer from 1/],
    [['--rpm', '0'], /--rpm="0"/],
    [['--port', '70000'], /--port="70000"/],
    [['--tps', '1.5'], /--tps="1.5"/],
    [['--latency-ms'], /--latency-ms needs a value/],
    [['--speed', '3'], /unknown flag "--speed"/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseSimServerArgs(argv)).toThrow(SimArgumentError);
    expect(() => parseSimServerArgs(argv)).toThrow(message);
  });

  it('the script exits 2 with one line on a bad flag, and prints its URL when it starts', async () => {
    const bad = spawnSync(TSX, ['scripts/sim-llm.ts', '--concurrency', 'many'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual([
      'sim-llm: --concurrency="many" — expected an integer from 1 to 1000000',
    ]);

    const child = spawn(TSX, ['scripts/sim-llm.ts', '--port', '0', '--latency-ms', '1'], { cwd: ROOT });
    try {
      const firstLine = await new Promise<string>((resolve, reject) => {
        let output = '';
        child.stdout.on('data', (data: Buffer) => {
          output += data.toString();
          if (output.includes('\n')) resolve(output.split('\n')[0]);
        });
        child.once('exit', () => reject(new Error(`exited early: ${output}`)));
      });
      const url = /listening on (http:\/\/\S+)/.exec(firstLine)![1];
      const stats = await (await fetch(`${url}/sim/stats`)).json();
      expect(stats).toMatchObject({ requests: 0, inFlight: 0 });
    } finally {
      child.kill('SIGTERM');
    }
    // Two tsx start-ups: seconds on a loaded 2-core machine.
  }, 60_000);
});
