import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A real nginx in front of Troupe instances, for the CI test (test/deploy/nginx-cluster.test.ts)
 * and the `cluster` benchmark: the repository's deploy/nginx/troupe.conf, run as it is but for
 * its upstream servers and listen address.
 */
export const NGINX_TEMPLATE = path.resolve(__dirname, '..', '..', 'deploy', 'nginx', 'troupe.conf');

/** The nginx binary, or undefined when it is not installed (CI installs it: .ci/run). */
export function findNginx(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' });
  const binary = found.stdout.trim().split('\n')[0];
  return found.status === 0 && binary ? binary : undefined;
}

/**
 * deploy/nginx/troupe.conf with its upstream servers and listen address replaced, wrapped in the
 * main context nginx needs to run unprivileged in a temporary prefix (no daemon, logs to stderr).
 */
export function nginxConfig(options: { listenPort: number; upstreams: string[]; prefix: string }): string {
  const template = fs.readFileSync(NGINX_TEMPLATE, 'utf8');
  // The servers' parameters (max_fails …) as the template gives them: the deploy's own.
  const parameters = /^\s*server 127\.0\.0\.1:\d+([^;]*);/m.exec(template)?.[1] ?? '';
  const servers = options.upstreams.map((address) => `    server ${address}${parameters};`).join('\n');
  const site = template
    .replace(/^\s*server 127\.0\.0\.1:\d+[^;]*;\n/gm, '')
    .replace(/upstream troupe \{\n/, `upstream troupe {\n${servers}\n`)
    .replace(/listen 80;/, `listen 127.0.0.1:${options.listenPort};`);
  if (site.includes('listen 80;') || !site.includes(servers))
    throw new Error('troupe.conf no longer matches the test');
  const temp = (name: string) => path.join(options.prefix, name);
  return [
    'daemon off;',
    'worker_processes 1;',
    // As root, nginx's workers would switch to a user that cannot read the temporary prefix.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `pid ${temp('nginx.pid')};`,
    'error_log stderr warn;',
    // Each open stream holds two connections (client and upstream): 500 users need more than the default 1024.
    'worker_rlimit_nofile 20000;',
    'events { worker_connections 8192; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${temp('body')};`,
    `  proxy_temp_path ${temp('proxy')};`,
    `  fastcgi_temp_path ${temp('fastcgi')};`,
    `  uwsgi_temp_path ${temp('uwsgi')};`,
    `  scgi_temp_path ${temp('scgi')};`,
    site,
    '}',
    '',
  ].join('\n');
}

export interface RunningNginx {
  url: string;
  stderr(): string;
  stop(): Promise<void>;
}

/** A real nginx in the foreground on a free loopback port, proxying to `upstreams`. */
export async function startNginx(binary: string, upstreams: string[]): Promise<RunningNginx> {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-nginx-'));
  fs.chmodSync(prefix, 0o755);
  const listenPort = await freePort();
  const configFile = path.join(prefix, 'nginx.conf');
  fs.writeFileSync(configFile, nginxConfig({ listenPort, upstreams, prefix }));
  const child: ChildProcess = spawn(binary, ['-e', 'stderr', '-p', prefix, '-c', configFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 20_000;
  while (!(await accepts(listenPort))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not start: ${stderr.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: `http://127.0.0.1:${listenPort}`,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
