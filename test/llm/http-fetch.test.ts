import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpFetch, type HttpFetch } from '../../api/llm/providers/http-fetch';

/** The SDK's fetch on Node's HTTP client, against a real local server. */
describe('createHttpFetch', () => {
  let server: http.Server;
  let baseUrl: string;
  let client: HttpFetch;
  const received: Array<{ method?: string; headers: http.IncomingHttpHeaders; body: string }> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (piece: Buffer) => (body += piece.toString()));
      req.on('end', () => {
        received.push({ method: req.method, headers: req.headers, body });
        if (req.url === '/hang') return; // never answers: only an abort ends it
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('X-Request-Id', 'req-1');
        res.setHeader('Via', ['a', 'b']);
        res.statusCode = req.url === '/missing' ? 404 : 200;
        res.end(JSON.stringify({ echoed: body }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client = createHttpFetch();
  });

  afterAll(async () => {
    client.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('sends the method, headers and body; reads status, headers and JSON', async () => {
    const response = await client.fetch(`${baseUrl}/v1/chat`, {
      method: 'POST',
      headers: new Headers({ Authorization: 'Bearer k', 'Content-Type': 'application/json' }),
      body: '{"q":1}',
    });
    expect(received.at(-1)).toMatchObject({
      method: 'POST',
      body: '{"q":1}',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json', 'content-length': '7' },
    });
    expect(response.ok).toBe(true);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ echoed: '{"q":1}' });
    expect(response.bodyUsed).toBe(true);
  });

  test('response headers: case-insensitive get and has, repeated ones joined, iterable like Headers', async () => {
    const { headers } = await client.fetch(`${baseUrl}/missing`);
    expect(headers.get('x-request-id')).toBe('req-1');
    expect(headers.get('X-Request-ID')).toBe('req-1');
    expect(headers.get('via')).toBe('a, b');
    expect(headers.get('retry-after')).toBeNull();
    expect(headers.has('Content-Type')).toBe(true);
    expect(headers.has('retry-after')).toBe(false);
    const entries = new Map(headers.entries());
    expect(entries.get('content-type')).toBe('application/json');
    expect(entries.get('via')).toBe('a, b');
    expect(new Map([...headers]).get('x-request-id')).toBe('req-1');
    const seen: string[] = [];
    headers.forEach((_value, name) => seen.push(name));
    expect(seen).toEqual([...headers.keys()]);
  });

  test('an error status is a response, not a rejection', async () => {
    const response = await client.fetch(`${baseUrl}/missing`);
    expect(response.ok).toBe(false);
    expect(response.status).toBe(404);
    expect(await response.text()).toBe('{"echoed":""}');
  });

  test('an abort rejects with an AbortError, before and during the call', async () => {
    const before = new AbortController();
    before.abort();
    await expect(client.fetch(`${baseUrl}/hang`, { signal: before.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    const during = new AbortController();
    const pending = client.fetch(`${baseUrl}/hang`, { method: 'POST', body: 'x', signal: during.signal });
    while (received.at(-1)?.body !== 'x') await new Promise((resolve) => setImmediate(resolve));
    during.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });
});
