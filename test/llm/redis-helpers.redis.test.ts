import { startTcpProxy } from '../../scripts/bench/tcp-proxy';
import { connectRedis, sleep } from './redis-helpers';

/**
 * The Redis tests' connection helper survives a slow ready check: ioredis's INFO runs under the
 * command timeout, so on a loaded machine a test's short timeout (80 ms in the lease property test)
 * failed the setup of a run ("Connection is closed.") instead of testing anything.
 */
describe('connectRedis', () => {
  test('waits for a connection whose ready check outlasted its command timeout', async () => {
    const proxy = await startTcpProxy(6379);
    try {
      // The replies are held: the ready check times out, ioredis drops the connection and retries.
      proxy.stall();
      const connecting = connectRedis(proxy.url, 80);
      await sleep(400);
      proxy.flow();
      const redis = await connecting;
      try {
        expect(await redis.ping()).toBe('PONG');
      } finally {
        redis.disconnect();
      }
    } finally {
      await proxy.close();
    }
  });

  test('fails, in the end, when Redis never becomes ready', async () => {
    const proxy = await startTcpProxy(6379);
    try {
      proxy.stall();
      await expect(connectRedis(proxy.url, 80, 500)).rejects.toThrow(/not ready within 500 ms/);
    } finally {
      proxy.flow();
      await proxy.close();
    }
  });
});
