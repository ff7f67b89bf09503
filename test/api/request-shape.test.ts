import http from 'node:http';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import express from 'express';
import { createHttpServer } from '../../api/http/create-http-server';
import { createLogger } from '../../api/logger';
import { requestContext } from '../../api/routes/request-context';

// V8's own answer to "is this object still a fast-mode object, or a dictionary?"
v8.setFlagsFromString('--allow-natives-syntax');
const hasFastProperties = new Function('object', 'return %HasFastProperties(object)') as (
  object: object,
) => boolean;
v8.setFlagsFromString('--no-allow-natives-syntax');

describe('the HTTP server builds requests that keep a fast shape', () => {
  test('a request routed through the app is not a dictionary (~1.2 KB less heap per open stream)', async () => {
    const logger = createLogger('warn');
    const app = express();
    app.use(requestContext(logger, app.request));
    app.use(express.json());
    const api = express.Router();
    const shapes: boolean[] = [];
    api.post('/chat', (req, res) => {
      shapes.push(hasFastProperties(req));
      res.end('ok');
    });
    app.use('/api', api);
    const server = createHttpServer(app, { bodyTimeoutMs: 30_000, logger, requestPrototype: app.request });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve, reject) => {
        const request = http.request(
          {
            port,
            host: '127.0.0.1',
            path: '/api/chat',
            method: 'POST',
            headers: { 'content-type': 'application/json' },
          },
          (response) => {
            response.resume();
            response.on('end', resolve);
          },
        );
        request.on('error', reject);
        request.end('{"message":"hi"}');
      });
      expect(shapes).toEqual([true]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
