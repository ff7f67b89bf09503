import net from 'node:net';
import path from 'node:path';
import { REPO_ROOT, startChild, type ChildServer } from './server-processes';

/**
 * The bare gateway Troupe is measured against (issue 14): Portkey's open-source AI gateway
 * (`@portkey-ai/gateway`, a dev dependency) as its own node process, exactly as `npx
 * @portkey-ai/gateway` starts it. It needs no configuration: each request names its provider
 * (`x-portkey-provider: openai`) and where that provider is (`x-portkey-custom-host`); loopback
 * hosts are trusted by default.
 */

export const PORTKEY_ENTRY = path.join(
  REPO_ROOT,
  'node_modules',
  '@portkey-ai',
  'gateway',
  'build',
  'start-server.js',
);

/** A free loopback port: Portkey takes its port on the command line and cannot report one it chose. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startPortkey(logFile: string): Promise<ChildServer> {
  const port = await freePort();
  // --headless and NODE_ENV=production: no log UI and no in-memory log stream, the gateway alone.
  const child = await startChild(
    'Portkey',
    [PORTKEY_ENTRY, `--port=${port}`, '--headless'],
    { ...process.env, NODE_ENV: 'production' },
    /Ready for connections/,
    logFile,
  );
  // Portkey listens on every interface as "localhost"; the loop talks to it on loopback.
  return { ...child, url: `http://127.0.0.1:${port}` };
}
