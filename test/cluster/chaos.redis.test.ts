import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';

/**
 * Chaos on the shared quota: three instances (processes) under load against their OWN redis-server
 * on a free port (never the shared one), with a SIGKILL, a SIGSTOP longer than a lease (a long GC
 * pause), a Redis restart and a FLUSHALL. The provider (this test) counts its calls in flight and
 * answers 429 past C. Asserted: no call past C (no 429) but the reported ones below, and after each
 * fault the leases in Redis come back to the calls in flight (none, at a pause of the load) within
 * the lease time. Reported: the paused instance's calls still at the provider when their leases
 * lapsed, and calls it had been granted before the pause and sent on waking, under a lapsed lease.
 */
const CONCURRENCY = 12;
const WORKERS = 10;
const LEASE_MS = 3_000;
const RENEW_EVERY_MS = 500;
const CALL_MS = 150;
const INSTANCE_SCRIPT = path.join(__dirname, 'chaos', 'chaos-instance.ts');
const PREFIX = 'troupe-chaos:';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await sleep(25);
  }
  return Date.now() - started;
}

interface Provider {
  url: string;
  inFlight: number;
  maxInFlight: number;
  rejected: number;
  /** When each 429 came: the fault last begun, how long after, and from which instance. */
  rejections: Array<{ phase: string; afterMs: number; instance: string }>;
  phase: string;
  phaseAt: number;
  /** Calls in flight per instance name, with when each began. */
  open: Map<string, Set<number>>;
  close(): Promise<void>;
}

async function startProvider(): Promise<Provider> {
  const provider = {
    inFlight: 0,
    maxInFlight: 0,
    rejected: 0,
    rejections: [],
    phase: 'start',
    phaseAt: Date.now(),
    open: new Map<string, Set<number>>(),
  } as unknown as Provider;
  const server = http.createServer((request, response) => {
    const name = new URL(request.url ?? '/', 'http://x').searchParams.get('instance') ?? '?';
    if (provider.inFlight >= CONCURRENCY) {
      provider.rejected++;
      provider.rejections.push({
        phase: provider.phase,
        afterMs: Date.now() - provider.phaseAt,
        instance: name,
      });
      response.writeHead(429).end();
      return;
    }
    provider.inFlight++;
    provider.maxInFlight = Math.max(provider.maxInFlight, provider.inFlight);
    const began = Date.now();
    const open = provider.open.get(name) ?? new Set<number>();
    provider.open.set(name, open);
    open.add(began);
    setTimeout(() => {
      provider.inFlight--;
      open.delete(began);
      response.writeHead(200).end('ok');
    }, CALL_MS);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  provider.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  provider.close = () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return provider;
}

function startRedis(port: number): ChildProcess {
  return spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'],
    {
      stdio: 'ignore',
    },
  );
}

/** The test needs a redis-server binary of its own to restart and flush; without one it says it skipped. */
const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

(hasRedisServer ? describe : describe.skip)('chaos on the shared quota (own redis-server)', () => {
  const children: ChildProcess[] = [];
  let redisProcess: ChildProcess | undefined;
  let provider: Provider | undefined;
  let direct: Redis | undefined;

  afterAll(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    redisProcess?.kill('SIGKILL');
    direct?.disconnect();
    await provider?.close();
  });

  test('SIGKILL, SIGSTOP past the lease, Redis restart and FLUSHALL: never past C, leases back within the lease time', async () => {
    const redisPort = await freePort();
    redisProcess = startRedis(redisPort);
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    direct = new Redis(redisUrl, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    direct.on('error', () => undefined);
    await until(async () => (await direct!.ping().catch(() => '')) === 'PONG', 10_000);
    provider = await startProvider();

    const spawnInstance = (name: string): Promise<ChildProcess> => {
      const child = spawn(process.execPath, ['--import', 'tsx', INSTANCE_SCRIPT], {
        cwd: path.resolve(__dirname, '..', '..'),
        env: {
          ...process.env,
          CHAOS_NAME: name,
          CHAOS_CONCURRENCY: String(CONCURRENCY),
          CHAOS_WORKERS: String(WORKERS),
          CHAOS_PROVIDER_URL: provider!.url,
          CHAOS_REDIS_URL: redisUrl,
          CHAOS_PREFIX: PREFIX,
          CHAOS_LEASE_MS: String(LEASE_MS),
          CHAOS_RENEW_EVERY_MS: String(RENEW_EVERY_MS),
        },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.push(child);
      return new Promise((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('ready')) resolve(child);
        });
        child.once('exit', (code) => reject(new Error(`instance ${name} exited with ${code}`)));
      });
    };
    const liveLeases = async () => {
      const [seconds, micros] = await direct!.time();
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      return direct!.zcount(`${PREFIX}llm:leases`, `(${now}`, '+inf');
    };

    const instances = await Promise.all(['a', 'b', 'c'].map(spawnInstance));
    await until(() => provider!.maxInFlight >= CONCURRENCY - 2, 15_000);
    const report: string[] = [];
    // After each fault, a quiet moment: the load pauses, and the leases in Redis must come back to
    // the calls in flight (none) within the lease time; then the load resumes.
    const quiet = async (fault: string) => {
      for (const child of instances) child.stdin!.write('pause\n');
      const ms = await until(
        async () => provider!.inFlight === 0 && (await liveLeases()) === 0,
        LEASE_MS,
      ).catch(async () => {
        throw new Error(
          `${fault}: ${await liveLeases()} leases for ${provider!.inFlight} calls after ${LEASE_MS} ms`,
        );
      });
      report.push(`${fault}: leases back to the calls in flight within ${ms} ms of the pause`);
      provider!.phase = `resume after ${fault}`;
      provider!.phaseAt = Date.now();
      for (const child of instances) child.stdin!.write('resume\n');
      await sleep(1_000);
    };

    // SIGKILL: its leases lapse within the lease; a new instance joins.
    const phase = (name: string) => {
      provider!.phase = name;
      provider!.phaseAt = Date.now();
    };
    phase('SIGKILL');
    instances[2].kill('SIGKILL');
    await sleep(1_000);
    instances[2] = await spawnInstance('c2');
    await quiet('SIGKILL');

    // SIGSTOP longer than a lease (a long GC pause), then SIGCONT.
    const paused = instances[1];
    const openAtPause = [...(provider.open.get('b') ?? [])];
    phase('SIGSTOP');
    paused.kill('SIGSTOP');
    await sleep(LEASE_MS + 1_000);
    const outlived = openAtPause.filter((began) => (provider!.open.get('b') ?? new Set()).has(began));
    report.push(
      `SIGSTOP ${LEASE_MS + 1_000} ms (lease ${LEASE_MS} ms): ${openAtPause.length} of its calls were at the provider when it stopped, ` +
        `${outlived.length} still there when their leases lapsed (the provider ends a call on its own within ${CALL_MS} ms)`,
    );
    phase('SIGCONT');
    paused.kill('SIGCONT');
    await sleep(500);
    await quiet('SIGSTOP');

    // Redis restart: every instance on its share, then the hand-over.
    phase('Redis restart');
    redisProcess.kill('SIGKILL');
    await sleep(800);
    redisProcess = startRedis(redisPort);
    await until(async () => (await direct!.ping().catch(() => '')) === 'PONG', 10_000);
    await sleep(2_000);
    await quiet('Redis restart');

    // FLUSHALL on this private Redis: the state goes, running calls' leases come back.
    phase('FLUSHALL');
    await direct.flushall();
    await sleep(2_000);
    await quiet('FLUSHALL');
    // A call the paused instance had been granted before SIGSTOP and sent only after SIGCONT, its lease
    // lapsed meanwhile: the slot was given to another call (Redis cannot tell a paused process from a
    // dead one). That window is reported, not hidden; any other call past C fails the test.
    const outlivedLease = provider.rejections.filter(
      (rejection) => rejection.phase === 'SIGCONT' && rejection.instance === 'b' && rejection.afterMs < 1_000,
    );
    const otherRejections = provider.rejections.filter((rejection) => !outlivedLease.includes(rejection));
    report.push(
      `provider: max ${provider.maxInFlight} in flight of C=${CONCURRENCY}; ${provider.rejected} calls past C answered 429, ` +
        `${outlivedLease.length} of them sent by the paused instance on waking under a lease that had lapsed ` +
        `(${outlivedLease.map((rejection) => `+${rejection.afterMs} ms`).join(', ') || 'none'})`,
    );
    console.log(`chaos report:\n  ${report.join('\n  ')}`);

    expect(otherRejections).toEqual([]);
    expect(provider.maxInFlight).toBeLessThanOrEqual(CONCURRENCY);
  }, 90_000);
});
