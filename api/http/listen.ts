import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Starts `server` listening on `host`:`port` (0: any free port, as tests ask) and resolves with the
 * port it got and a URL a local client can use: a wildcard host (0.0.0.0, ::) is reached on
 * 127.0.0.1. Rejects when the port cannot be had (EADDRINUSE…).
 */
export async function listen(
  server: http.Server,
  port: number,
  host: string,
): Promise<{ port: number; url: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return { port: bound, url: `http://${reachable}:${bound}` };
}
