import net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A loopback TCP proxy that can be cut and restored: Redis "unreachable" for its clients only,
 * without touching the Redis server others share (the Redis outage tests, and the cluster
 * benchmark's outage variant).
 */
export interface TcpProxy {
  port: number;
  url: string;
  /** Drops every connection and refuses new ones. */
  cut(): void;
  restore(): void;
  /**
   * Holds every byte in both directions (connections stay open): Redis, or the network, stalls.
   * Commands sent meanwhile run when it ends, in order, and their replies arrive late.
   */
  stall(): void;
  /** Ends a stall: what was held is delivered, in order. */
  flow(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let cut = false;
  let stalled = false;
  const held: Array<{ to: net.Socket; chunk: Buffer }> = [];
  const forward = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (stalled || held.length > 0) held.push({ to, chunk });
      else to.write(chunk);
    });
  };
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    forward(client, upstream);
    forward(upstream, client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    cut() {
      cut = true;
      held.length = 0;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      cut = false;
    },
    stall() {
      stalled = true;
    },
    flow() {
      stalled = false;
      for (const { to, chunk } of held.splice(0)) if (!to.destroyed) to.write(chunk);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
